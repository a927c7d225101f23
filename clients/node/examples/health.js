#!/usr/bin/env node
// SpotOn's health, component by component: the smallest use of the client.
//
//   SPOTON_API_KEY=spk_... node examples/health.js --target 127.0.0.1:50051
import { parseArgs } from 'node:util';
import { connect } from '@spoton/client';

const { values } = parseArgs({ options: { target: { type: 'string', default: '127.0.0.1:50051' } } });

const spoton = connect({ target: values.target }); // the API key from $SPOTON_API_KEY
try {
  const health = await spoton.system.getHealth({}, { deadlineMs: 10_000 });
  console.log(`status: ${health.status}`);
  for (const component of health.components) {
    console.log(`  ${component.name}: ${component.status}${component.detail ? ` (${component.detail})` : ''}`);
  }
} finally {
  spoton.close();
}
