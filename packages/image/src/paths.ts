/** Image-relative paths: no leading slash, "" for the root. */

export function normalizePath(path: string): string {
  return path.split("/").filter((p) => p && p !== ".").join("/");
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "" : path.slice(0, i);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

export function joinPath(dir: string, name: string): string {
  return dir ? `${dir}/${name}` : name;
}
