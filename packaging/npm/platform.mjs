// Makes the npm package of one platform's `tokportal` binary:
//   node packaging/npm/platform.mjs <rust target> <binary> <out dir>
// Its name, version, os and cpu follow the main package, which lists it in
// optionalDependencies. Used by release.yml and .ci/run.
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const TARGETS = {
  'x86_64-unknown-linux-gnu': ['linux', 'x64'],
  'aarch64-unknown-linux-gnu': ['linux', 'arm64'],
  'x86_64-apple-darwin': ['darwin', 'x64'],
  'aarch64-apple-darwin': ['darwin', 'arm64'],
  'x86_64-pc-windows-msvc': ['win32', 'x64'],
};

const [target, binary, out] = process.argv.slice(2);
if (!target || !binary || !out || !TARGETS[target]) {
  console.error(`usage: platform.mjs <${Object.keys(TARGETS).join('|')}> <binary> <out dir>`);
  process.exit(2);
}
const [os, cpu] = TARGETS[target];
const here = dirname(fileURLToPath(import.meta.url));
const main = JSON.parse(readFileSync(join(here, 'tokportal-sandbox', 'package.json'), 'utf8'));
const name = `tokportal-sandbox-${os}-${cpu}`;
if (!(name in main.optionalDependencies)) {
  console.error(`${name} is not among tokportal-sandbox's optionalDependencies`);
  process.exit(2);
}
const exe = os === 'win32' ? 'tokportal.exe' : 'tokportal';
mkdirSync(join(out, 'bin'), { recursive: true });
copyFileSync(binary, join(out, 'bin', exe));
chmodSync(join(out, 'bin', exe), 0o755);
writeFileSync(
  join(out, 'package.json'),
  JSON.stringify(
    {
      name,
      version: main.version,
      description: `The tokportal binary for ${os}-${cpu} (used by tokportal-sandbox)`,
      license: main.license,
      repository: main.repository,
      os: [os],
      cpu: [cpu],
      files: [`bin/${exe}`],
    },
    null,
    2
  ) + '\n'
);
console.log(join(out, 'package.json'));
