#!/usr/bin/env node
// skein-fleet-start AGENT: the old launcher's drop-in; compiled code in ../dist.
import { fleetStart } from "../dist/fleet-start.js";

process.noDeprecation = true;
process.exit(await fleetStart(process.argv.slice(2)));
