import { describe, expect, it } from "vitest";
import { renderMetrics } from "./metrics.js";

describe("renderMetrics", () => {
  it("should write HELP, TYPE and samples with escaped labels", () => {
    const text = renderMetrics([
      { name: "lazypull_images", help: "image leases held", type: "gauge", samples: [{ value: 2 }] },
      {
        name: "lazypull_layer_requests_total",
        help: 'range requests\nper "layer"',
        type: "counter",
        samples: [
          { labels: { digest: "sha256:ab", state: "complete" }, value: 7 },
          { labels: { digest: 'we"ird\\\n' }, value: Infinity },
        ],
      },
    ]);
    expect(text).toEqual(
      [
        "# HELP lazypull_images image leases held",
        "# TYPE lazypull_images gauge",
        "lazypull_images 2",
        '# HELP lazypull_layer_requests_total range requests\\nper "layer"',
        "# TYPE lazypull_layer_requests_total counter",
        'lazypull_layer_requests_total{digest="sha256:ab",state="complete"} 7',
        'lazypull_layer_requests_total{digest="we\\"ird\\\\\\n"} +Inf',
        "",
      ].join("\n"),
    );
  });
});
