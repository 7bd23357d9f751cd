#!/usr/bin/env node
// Sidecar launcher: runs the proxy from the CommonJS bundle `weft up` made (src/control/proxy-code.ts says why), or from source without one.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const code = process.env.WEFT_PROXY_CODE;
const bundle = code ? join(code, 'proxy.cjs') : undefined;
if (bundle && existsSync(bundle)) require(bundle);
else import('../src/proxy/main.ts');
