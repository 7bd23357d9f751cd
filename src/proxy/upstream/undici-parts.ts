// undici's HTTP/1.1 Pool and connector, loaded by themselves rather than through the package's index.
//
// undici's index also loads fetch, WebSocket, EventSource, caches and mock agents, which the
// proxy never uses: about 11 MiB of RSS in every proxy process (measured: requiring the index
// adds 27 MiB, these modules 16 MiB). The index also gives every dispatcher its request API
// (`request`, `stream`, … mixed into Dispatcher.prototype); done here the same way, since the
// proxy calls `pool.request`. The types still come from the package.

import { createRequire } from 'node:module';
import type { Pool as UndiciPool, buildConnector as UndiciBuildConnector } from 'undici';

const require = createRequire(import.meta.url);

const Dispatcher: { prototype: object } = require('undici/lib/dispatcher/dispatcher.js');
if (!('request' in Dispatcher.prototype)) Object.assign(Dispatcher.prototype, require('undici/lib/api/index.js'));

export const Pool: typeof UndiciPool = require('undici/lib/dispatcher/pool.js');
export const buildConnector: typeof UndiciBuildConnector = require('undici/lib/core/connect.js');
