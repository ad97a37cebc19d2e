import cf from 'cloudfront';  // the first line, as CloudFront Functions ask of the module's import
// CloudFront Function (cloudfront-js-2.0), viewer-request, on the behaviour /v2/*/blobs/sha256:*.
//
// A blob GET whose bearer token carries an edge claim that admits it goes straight to the bucket
// (origin "blobs", through origin access control), the function never woken; everything else goes
// on to the API origin unchanged, with the viewer's Host as the viewer-host function passes it.
// It decides exactly as chalicelib/access/edge.py `admits` does (tests/infra/test_edge.py runs both
// on the same cases): the claim is for this repository, unexpired, lists the digest's first 128
// bits, and its HMAC-SHA256 under the edge secret holds; the entry says which key holds the bytes
// (the content-addressed one, or a direct upload's). The edge refuses nothing: the function
// decides whatever the edge does not serve. infra/stack.py puts the secret in SECRET (a Secrets
// Manager dynamic reference) and the other placeholders' values in place.
const crypto = require('crypto');

const SECRET = '__EDGE_SECRET__';
const CONTEXT = 'dockless-edge-v1';
const PREFIX_HEX = 32;
const ENTRY_HEX = 64;
const TOKEN_MAX_CHARS = 8192;
const BLOB_PATH = /^\/v2\/([a-z0-9._\/-]+)\/blobs\/sha256:([a-f0-9]{64})$/;
const VIEWER_HOST = '__VIEWER_HOST__';
const BASE64URL = /^[A-Za-z0-9_-]*$/;

function same(a, b) {
  if (a.length !== b.length) return false;
  var difference = 0;
  for (var i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}

function claimsOf(authorization) {
  var space = authorization.indexOf(' ');
  var token = space < 0 ? '' : authorization.slice(space + 1).trim();
  if (space < 0 || authorization.slice(0, space).toLowerCase() !== 'bearer' || token.length > TOKEN_MAX_CHARS) return null;
  var parts = token.split('.');
  if (parts.length !== 3) return null;
  if (!BASE64URL.test(parts[1])) return null;
  try {
    var claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    return claims !== null && typeof claims === 'object' && !Array.isArray(claims) ? claims : null;
  } catch (e) {
    return null;
  }
}

// The bucket key that answers the request, else null.
function admitted(request, now) {
  if (request.method !== 'GET') return null;
  var match = BLOB_PATH.exec(request.uri);
  var authorization = request.headers.authorization;
  if (match === null || authorization === undefined) return null;
  var claims = claimsOf(authorization.value);
  var edge = claims === null ? null : claims.edge;
  if (edge === null || edge === undefined || typeof edge !== 'object' || Array.isArray(edge)) return null;
  if (typeof edge.repo !== 'string' || typeof edge.exp !== 'number' || edge.exp % 1 !== 0 ||
      typeof edge.blobs !== 'string' || typeof edge.mac !== 'string') return null;
  if (edge.repo !== match[1] || now >= edge.exp || edge.blobs.length % ENTRY_HEX !== 0) return null;
  var hex = match[2], found = null;
  for (var start = 0; start < edge.blobs.length && found === null; start += ENTRY_HEX) {
    if (edge.blobs.slice(start, start + PREFIX_HEX) === hex.slice(0, PREFIX_HEX)) found = edge.blobs.slice(start, start + ENTRY_HEX);
  }
  if (found === null) return null;
  var mac = crypto.createHmac('sha256', SECRET)
    .update(CONTEXT + '\n' + edge.repo + '\n' + edge.exp + '\n' + edge.blobs).digest('hex');
  if (!same(mac, edge.mac)) return null;
  return found === hex ? '__BLOBS_PREFIX__sha256/' + hex : '__BLOBS_PREFIX__direct/' + found.slice(PREFIX_HEX);
}

function handler(event) {
  var request = event.request;
  var key = admitted(request, Date.now() / 1000);
  if (key === null) {
    request.headers[VIEWER_HOST] = {value: request.headers.host.value};
    return request;
  }
  cf.selectRequestOriginById('blobs');
  request.uri = '/' + key;
  request.querystring = {};
  var kept = {};
  if (request.headers.range !== undefined) kept.range = request.headers.range;
  request.headers = kept;
  return request;
}
