#!/usr/bin/env node
'use strict';
// `npx tokportal ...`: runs this platform's binary with the same arguments.
const { spawnSync } = require('node:child_process');
const { binaryPath } = require('../index.js');

const result = spawnSync(binaryPath(), process.argv.slice(2), { stdio: 'inherit' });
if (result.error) {
  console.error(result.error.message);
  process.exit(1);
}
process.exit(result.status === null ? 1 : result.status);
