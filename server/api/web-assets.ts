// The dashboard's files, bundled by esbuild into memory on first use and then served from a fixed map.
//
// Serving from a map of known names (instead of a directory) is what makes path traversal impossible:
// a request can only ever name one of these few entries, never a file on disk.

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

export const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../../web/', import.meta.url));

export interface Asset {
  body: Buffer;
  contentType: string;
  etag: string;
}

export type AssetMap = ReadonlyMap<string, Asset>;

function asset(body: Buffer | string, contentType: string): Asset {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  return { body: buf, contentType, etag: `"${createHash('sha256').update(buf).digest('base64url').slice(0, 22)}"` };
}

/** Bundles web/main.ts and web/style.css (which pulls in uPlot's CSS from node_modules). */
export async function buildWebAssets(webRoot: string = DEFAULT_WEB_ROOT): Promise<AssetMap> {
  const result = await esbuild.build({
    entryPoints: { app: join(webRoot, 'main.ts'), 'app-style': join(webRoot, 'style.css') },
    bundle: true,
    write: false,
    outdir: '/assets',
    format: 'esm',
    target: ['chrome110', 'firefox110', 'safari16'],
    minify: true,
    sourcemap: 'linked',
    logLevel: 'silent',
    absWorkingDir: join(webRoot, '..'),
  });
  const map = new Map<string, Asset>();
  for (const file of result.outputFiles) {
    const name = file.path.replace(/^.*\/assets\//, '');
    const type = name.endsWith('.js')
      ? 'text/javascript; charset=utf-8'
      : name.endsWith('.css')
        ? 'text/css; charset=utf-8'
        : 'application/json; charset=utf-8';
    map.set(`assets/${name}`, asset(Buffer.from(file.contents), type));
  }
  const html = await readFile(join(webRoot, 'index.html'), 'utf8');
  map.set('', asset(html, 'text/html; charset=utf-8'));
  map.set('favicon.svg', asset(await readFile(join(webRoot, 'favicon.svg')), 'image/svg+xml'));
  return map;
}
