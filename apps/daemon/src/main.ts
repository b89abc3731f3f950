#!/usr/bin/env node
import { setFlagsFromString } from "node:v8";

// lazypulld compiles every function of its modules as they load, not on first call (V8's --no-lazy,
// set here so it holds however node is started): the first acquire after lazypulld starts otherwise
// compiles the resolve, TOC and predictor paths while a container waits. Measured (10 interleaved cold
// reps, 100mbit/20ms-rtt): image ready 15-20 ms sooner, first output 10-25 ms sooner; it costs ~6 MB of
// RSS and 70-160 ms of lazypulld's own start (README, "Memory").
setFlagsFromString("--no-lazy");
await import("./lazypulld.js");
