// undici's HTTP/1.1 Pool and connector, loaded by themselves rather than through the package's index.
//
// undici's index also loads fetch, WebSocket, EventSource, caches, mock agents and the request
// API (`request`, `stream`, … with their Readable), which the proxy never uses — it dispatches
// with a handler of its own (dispatch.ts): about 11 MiB of RSS in every proxy process (measured:
// requiring the index adds 27 MiB, these modules 16 MiB). The types still come from the package.

import { createRequire } from 'node:module';
import type { Pool as UndiciPool, buildConnector as UndiciBuildConnector } from 'undici';

const require = createRequire(import.meta.url);

export const Pool: typeof UndiciPool = require('undici/lib/dispatcher/pool.js');
export const buildConnector: typeof UndiciBuildConnector = require('undici/lib/core/connect.js');
