/**
 * The OS image the base sandbox type starts FROM. Machines without a reachable registry cannot
 * pull it, so when a quick pull fails, `debian:bookworm-slim` is made locally: debootstrap a
 * minimal bookworm, trim it the way Debian's slim images are trimmed, and `docker import` it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { followStatusStream, lineSplitter, type ProgressLog } from './docker-stream.js';
import { ImageBuildError, messageOf } from './errors.js';
import { inspectLocalImage } from './local-images.js';

export const DEFAULT_BASE_OS_IMAGE = 'debian:bookworm-slim';

/** A registry that answers fails or starts streaming well within this; one that hangs is given up. */
const PULL_ANSWER_TIMEOUT_MS = 15_000;

/** What Debian's own image sets, so the imported image behaves the same. */
const IMPORT_CHANGES = [
  'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  'CMD ["bash"]',
];

/** The suites Debian's image uses (debootstrap sets up only `bookworm main`): updates and security fixes. */
const DEBIAN_SOURCES = `Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`;

/** Makes sure `image` is present locally: as it is, else pulled, else (Debian bookworm only) debootstrapped. */
export async function ensureBaseOsImage(docker: Docker, image: string, log: ProgressLog): Promise<void> {
  if (await inspectLocalImage(docker, image)) return;
  log(`base OS image ${image} is not here; trying docker pull`);
  try {
    await pullImage(docker, image, log);
    return;
  } catch (error) {
    log(`pull of ${image} failed: ${messageOf(error)}`);
  }
  if (image !== DEFAULT_BASE_OS_IMAGE) {
    throw new ImageBuildError(
      `base OS image ${image} is not available locally and could not be pulled ` +
        `(only ${DEFAULT_BASE_OS_IMAGE} can be made locally, with debootstrap)`,
    );
  }
  await importDebootstrapImage(docker, image, log);
}

async function pullImage(docker: Docker, image: string, log: ProgressLog): Promise<void> {
  const answered = new AbortController();
  const timer = setTimeout(() => answered.abort(), PULL_ANSWER_TIMEOUT_MS);
  let stream: NodeJS.ReadableStream;
  try {
    stream = await docker.pull(image, { abortSignal: answered.signal });
  } finally {
    clearTimeout(timer);
  }
  await followStatusStream(stream, log);
}

/** debootstrap --variant=minbase bookworm, trimmed, imported as `image`. Needs root and debootstrap. */
export async function importDebootstrapImage(docker: Docker, image: string, log: ProgressLog): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new ImageBuildError(`making ${image} with debootstrap needs root; run the builder as root`);
  }
  const started = Date.now();
  const rootfs = mkdtempSync(join(tmpdir(), 'runtime-sandbox-rootfs-'));
  try {
    log(`debootstrap --variant=minbase bookworm ${rootfs} (takes a minute or so)`);
    await runLogged('debootstrap', ['--variant=minbase', 'bookworm', rootfs], log);
    trimRootfs(rootfs);
    log(`importing ${rootfs} as ${image}`);
    await importRootfs(docker, rootfs, image, log);
    log(`made ${image} in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  } finally {
    unmountBelow(rootfs);
    rmSync(rootfs, { recursive: true, force: true });
  }
}

function runLogged(command: string, args: string[], log: ProgressLog): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = lineSplitter(log);
    const err = lineSplitter(log);
    child.stdout.setEncoding('utf8').on('data', out.write);
    child.stderr.setEncoding('utf8').on('data', err.write);
    child.on('error', (error: NodeJS.ErrnoException) => {
      const hint =
        error.code === 'ENOENT' ? ` (${command} is not installed; scripts/bootstrap.sh installs it)` : '';
      reject(new ImageBuildError(`cannot run ${command}: ${error.message}${hint}`));
    });
    child.on('close', (code, signal) => {
      out.flush();
      err.flush();
      if (code === 0) resolve();
      else reject(new ImageBuildError(`${command} failed (${signal ?? `exit code ${code}`})`));
    });
  });
}

/** Drops what a container image does not need: downloaded packages, apt lists, docs and translations. */
function trimRootfs(rootfs: string): void {
  removeChildren(join(rootfs, 'var/cache/apt/archives'), (name) => !name.endsWith('.deb'));
  removeChildren(join(rootfs, 'var/lib/apt/lists'));
  for (const folder of ['man', 'info', 'groff', 'lintian']) removeChildren(join(rootfs, 'usr/share', folder));
  removeChildren(join(rootfs, 'usr/share/locale'), (name) => name === 'locale.alias');
  // Licences stay, as in Debian's slim images.
  for (const pkg of readdirSync(join(rootfs, 'usr/share/doc'))) {
    removeChildren(join(rootfs, 'usr/share/doc', pkg), (name) => name === 'copyright');
  }
  rmSync(join(rootfs, 'etc/apt/sources.list'), { force: true });
  mkdirSync(join(rootfs, 'etc/apt/sources.list.d'), { recursive: true });
  writeFileSync(join(rootfs, 'etc/apt/sources.list.d/debian.sources'), DEBIAN_SOURCES);
}

function removeChildren(dir: string, keep: (name: string) => boolean = () => false): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!keep(name)) rmSync(join(dir, name), { recursive: true, force: true });
  }
}

async function importRootfs(docker: Docker, rootfs: string, image: string, log: ProgressLog): Promise<void> {
  const tar = spawn('tar', ['-C', rootfs, '--numeric-owner', '-c', '.'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tarErrors = '';
  tar.stderr.setEncoding('utf8').on('data', (text: string) => {
    tarErrors += text;
  });
  const tarDone = new Promise<void>((resolve, reject) => {
    tar.on('error', reject);
    tar.on('close', (code) =>
      code === 0 ? resolve() : reject(new ImageBuildError(`tar of ${rootfs} failed: ${tarErrors.trim()}`)),
    );
  });
  const imported = docker
    .importImage(tar.stdout as Readable, { repo: image, changes: IMPORT_CHANGES })
    .then((stream) => followStatusStream(stream, log));
  try {
    await Promise.all([imported, tarDone]);
  } catch (error) {
    tar.kill();
    throw error;
  }
}

/**
 * debootstrap mounts /proc (and may bind /dev) inside the target while it works; if it died
 * before undoing that, deleting the folder must not reach through into the host's.
 */
function unmountBelow(dir: string): void {
  const mountPoints = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .filter((point) => point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const point of mountPoints) spawnSync('umount', ['-l', point]);
}
