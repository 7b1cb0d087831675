'use strict';
// SocialSidecar client for Node: `const { Sidecar } = require('social-sidecar')`.

const { FrameDecoder, FramingError, encodeMessage } = require('./framing');
const { Connection, RemoteError } = require('./connection');
const { Sidecar, findBinary, PLATFORMS } = require('./sidecar');
const errors = require('./errors');

module.exports = { Sidecar, findBinary, PLATFORMS, Connection, RemoteError, FrameDecoder, FramingError, encodeMessage,
  ...errors };
