// The guest of the Linux USB run (server/twin/linux-usb.ts): Debian's own kernel, taken from the
// linux-image package that linux-image-amd64 depends on (`apt-get download`, `dpkg-deb -x`, cached in
// build/linux-usb/), and an initramfs written here (newc cpio): static busybox, the modules the
// device needs with their dependencies (read from each module's .modinfo: the package ships no
// modules.dep), a static `usbreset` helper (USBDEVFS_RESET) and hdl/usbredir/guest/init.sh as /init.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

export class GuestBuildError extends Error {
  override name = 'GuestBuildError';
}

/**
 * The modules the guest loads, in this order: usbmon (the capture), the virtio ports, then the USB host
 * controller QEMU emulates and CDC-ACM, so the capture can start before the device is enumerated.
 */
export const GUEST_MODULES = ['usbmon', 'virtio_pci', 'virtio_console', 'xhci-pci', 'cdc-acm'] as const;

export interface Guest {
  readonly kernel: string;
  readonly initramfs: string;
  /** `uname -r` of the kernel. */
  readonly release: string;
}

function run(cmd: string, args: string[], cwd: string, what: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new GuestBuildError(`${what}: ${(err.stderr || err.message).trim()}`);
  }
}

/** Downloads and unpacks the kernel package once; returns the unpacked tree and the release. */
function kernelTree(dir: string): { root: string; release: string } {
  const root = join(dir, 'root');
  const modules = join(root, 'lib/modules');
  if (!existsSync(join(dir, 'unpacked'))) {
    const depends = run('apt-cache', ['depends', 'linux-image-amd64'], dir, 'finding the kernel package (apt-cache)');
    const pkg = /Depends: (linux-image-[0-9][^\s]*-amd64)\b/.exec(depends)?.[1];
    if (!pkg) throw new GuestBuildError(`linux-image-amd64 depends on no linux-image-*-amd64 package:\n${depends}`);
    const debs = join(dir, 'deb');
    rmSync(debs, { recursive: true, force: true });
    mkdirSync(debs, { recursive: true });
    run('apt-get', ['download', pkg], debs, `downloading ${pkg} (apt-get download; needs the Debian mirror)`);
    const deb = readdirSync(debs).find((f) => f.endsWith('.deb'));
    if (!deb) throw new GuestBuildError(`apt-get download ${pkg} left no .deb in ${debs}`);
    rmSync(root, { recursive: true, force: true });
    run('dpkg-deb', ['-x', join(debs, deb), root], dir, `unpacking ${deb}`);
    rmSync(debs, { recursive: true, force: true });
    writeFileSync(join(dir, 'unpacked'), `${pkg}\n`);
  }
  const releases = readdirSync(modules);
  if (releases.length !== 1) throw new GuestBuildError(`expected one kernel in ${modules}, found ${releases.join(', ')}`);
  return { root, release: releases[0]! };
}

function walk(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) walk(join(dir, e.name), out);
    else if (e.name.endsWith('.ko')) out.push(join(dir, e.name));
  }
  return out;
}

const canonical = (name: string) => name.replace(/-/g, '_');

/** The module files to load, dependencies first. */
export function moduleLoadOrder(moduleDir: string, wanted: readonly string[]): string[] {
  const files = new Map(walk(moduleDir).map((f) => [canonical(basename(f, '.ko')), f]));
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string, from: string) => {
    const key = canonical(name);
    if (seen.has(key)) return;
    const file = files.get(key);
    if (!file) throw new GuestBuildError(`module ${name} (needed by ${from}) is not in ${moduleDir}`);
    seen.add(key);
    const modinfo = readFileSync(file);
    const at = modinfo.indexOf('\0depends=');
    if (at >= 0) {
      const end = modinfo.indexOf(0, at + 1);
      const deps = modinfo.subarray(at + '\0depends='.length, end).toString();
      for (const dep of deps.split(',').filter(Boolean)) visit(dep, name);
    }
    order.push(file);
  };
  for (const name of wanted) visit(name, 'the guest');
  return order;
}

type Entry = { name: string; mode: number; data?: Buffer; rdev?: [number, number] };

/** A newc ("070701") cpio archive, as the kernel unpacks an initramfs. */
export function newcArchive(entries: readonly Entry[]): Buffer {
  const parts: Buffer[] = [];
  const pad = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  [...entries, { name: 'TRAILER!!!', mode: 0 }].forEach((e, ino) => {
    const data = e.data ?? Buffer.alloc(0);
    const name = Buffer.from(`${e.name}\0`);
    const fields = [ino + 1, e.mode, 0, 0, 1, 0, data.length, 0, 0, e.rdev?.[0] ?? 0, e.rdev?.[1] ?? 0, name.length, 0];
    const header = Buffer.from(`070701${fields.map(hex).join('')}`);
    parts.push(header, name, pad(header.length + name.length), data, pad(data.length));
  });
  return Buffer.concat(parts);
}

const S_IFDIR = 0o040000, S_IFREG = 0o100000, S_IFCHR = 0o020000;

/** Builds (or reuses) the kernel and initramfs under `dir` (build/linux-usb). */
export function buildGuest(repoRoot: string, dir: string): Guest {
  mkdirSync(dir, { recursive: true });
  const { root, release } = kernelTree(dir);
  const kernel = join(root, 'boot', `vmlinuz-${release}`);
  if (!existsSync(kernel)) throw new GuestBuildError(`no kernel image at ${kernel}`);
  const guestSrc = join(repoRoot, 'hdl/usbredir/guest');
  const usbreset = join(dir, 'usbreset');
  run('gcc', ['-static', '-Os', '-Wall', '-o', usbreset, join(guestSrc, 'usbreset.c')], dir,
    'building the static usbreset helper (needs gcc and libc6-dev)');
  const modules = moduleLoadOrder(join(root, 'lib/modules', release), GUEST_MODULES);
  const entries: Entry[] = [
    ...['bin', 'dev', 'proc', 'sys', 'lib', 'lib/modules'].map((name) => ({ name, mode: S_IFDIR | 0o755 })),
    { name: 'dev/console', mode: S_IFCHR | 0o600, rdev: [5, 1] },
    { name: 'init', mode: S_IFREG | 0o755, data: readFileSync(join(guestSrc, 'init.sh')) },
    { name: 'bin/busybox', mode: S_IFREG | 0o755, data: readFileSync('/bin/busybox') },
    { name: 'bin/usbreset', mode: S_IFREG | 0o755, data: readFileSync(usbreset) },
    ...modules.map((f) => ({ name: `lib/modules/${basename(f)}`, mode: S_IFREG | 0o644, data: readFileSync(f) })),
    { name: 'lib/modules/load-order', mode: S_IFREG | 0o644, data: Buffer.from(modules.map((f) => basename(f)).join('\n') + '\n') },
  ];
  const initramfs = join(dir, 'initramfs.cpio');
  writeFileSync(`${initramfs}.new`, newcArchive(entries));
  renameSync(`${initramfs}.new`, initramfs);
  return { kernel, initramfs, release };
}
