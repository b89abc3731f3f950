/** The images and commands the suite starts; `include` goes to mmdebstrap on top of minbase. */
export interface Workload {
  id: string;
  title: string;
  include: string[];
  command: string[];
}

export const WORKLOADS: Workload[] = [
  { id: "minbase", title: "Debian bookworm minbase", include: [], command: ["cat", "/etc/os-release"] },
  { id: "python", title: "Debian + python3", include: ["python3"], command: ["python3", "-c", "print(1)"] },
  {
    // ~580 MB of files (numpy, gcc, g++, git); importing numpy reads its modules and libopenblas
    id: "numpy",
    title: "Debian + python3-numpy, gcc, g++, git",
    include: ["python3", "python3-numpy", "gcc", "g++", "git"],
    command: ["python3", "-c", "import numpy; print(numpy.__version__)"],
  },
];
