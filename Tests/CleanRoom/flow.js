'use strict';
// One real flow through the installed npm package's bundled binary (copied into the clean room's npm project by
// Tests/CleanRoom/run): posts on Facebook and LinkedIn against the fakes in $CLEAN_ROOM_CONFIG, waits for their metric
// events, shuts down cleanly, and prints one JSON line for clean_room.py.
const path = require('node:path');
const { Sidecar, findBinary } = require('social-sidecar');

const credentials = {
  'CRED-fb-001': { accessToken: 'fake-fb-page-token-1', accountId: '20000001' },
  'CRED-li-001': { accessToken: 'fake-li-access-token-1', accountId: 'urn:li:organization:40000001' },
};
const common = { customerId: 'CUST-CLEAN', agentId: 'AGENT-CLEAN' };

async function main() {
  const binary = findBinary();
  const packageDir = path.dirname(require.resolve('social-sidecar/package.json'));
  if (!binary.startsWith(packageDir + path.sep)) {
    throw new Error(`${binary} is not the bundled binary under ${packageDir}`);
  }
  const events = [];
  const sidecar = new Sidecar({
    config: JSON.parse(process.env.CLEAN_ROOM_CONFIG),
    resolveCredentials: async ({ credentialRef }) => credentials[credentialRef],
  });
  sidecar.on('event', (event) => events.push(event));
  const text = 'From the clean room, through Node';
  const facebook = await sidecar.facebook.post({ credentialRef: 'CRED-fb-001', text, ...common });
  const linkedin = await sidecar.linkedin.post({ credentialRef: 'CRED-li-001', text, ...common });
  for (let i = 0; i < 100 && events.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  const health = await sidecar.health();
  await sidecar.close();
  console.log(JSON.stringify({
    binary,
    facebook: facebook.postId,
    linkedin: linkedin.postId,
    events: events.map((e) => `${e.platform}/${e.operation}:${e.success ? 'ok' : 'failed'}`).sort(),
    http: health.http,
    exitCode: sidecar.lastExitCode,
  }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
