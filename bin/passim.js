#!/usr/bin/env node
// The thin entry: all logic lives in lib/ (compiled to dist/ by `npm ci`).
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2));
