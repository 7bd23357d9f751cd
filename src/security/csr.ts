// PKCS#10 certificate requests (RFC 2986): the proxy makes its own P-256 key and asks for its identity;
// the CA reads a request back, strictly, verifying its signature.
//
// The private key never leaves the proxy: only the request, which carries the public key and the
// SPIFFE ID asked for (one URI in a subjectAltName extension request), goes to the CA.
import { createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { bitString, children, context, DerError, expectTag, fromPem, ia5, octetString, oid, readBitString, readOid, readOne, readSmallInteger, seq, set, smallInteger, Tag, toPem, type Node } from './der.ts';
import { parseSpiffeId } from './spiffe.ts';

export const OID = {
  ecPublicKey: '1.2.840.10045.2.1',
  prime256v1: '1.2.840.10045.3.1.7',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  extensionRequest: '1.2.840.113549.1.9.14',
  subjectAltName: '2.5.29.17',
} as const;

/** GeneralName uniformResourceIdentifier: `[6] IMPLICIT IA5String`. */
const URI_NAME_TAG = context(6, false);

export interface WorkloadKeyAndCsr {
  /** Stays in the proxy's memory; used for its TLS context. */
  privateKey: KeyObject;
  /** PKCS#8 PEM of the same key, for a TLS context (`key:`). */
  privateKeyPem: string;
  /** What the proxy sends to the CA. */
  csrPem: string;
}

/** A fresh ECDSA P-256 key and a CSR for `spiffeId` (the request's only name). */
export function createWorkloadCsr(spiffeId: string): WorkloadKeyAndCsr {
  if (!parseSpiffeId(spiffeId)) throw new Error(`not a workload SPIFFE ID: ${JSON.stringify(spiffeId)}`);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
  const san = seq(oid(OID.subjectAltName), octetString(seq(tlvUri(spiffeId))));
  const extensionRequest = seq(oid(OID.extensionRequest), set(seq(san)));
  const info = seq(smallInteger(0), seq(/* empty subject: the identity is in the SAN */), spki, tlvContext0(extensionRequest));
  const signature = new Uint8Array(sign('sha256', info, privateKey));
  const csr = seq(info, seq(oid(OID.ecdsaWithSha256)), bitString(signature));
  return {
    privateKey,
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    csrPem: toPem('CERTIFICATE REQUEST', csr),
  };
}

function tlvUri(uri: string): Uint8Array {
  const encoded = ia5(uri);
  encoded[0] = URI_NAME_TAG;
  return encoded;
}

function tlvContext0(attribute: Uint8Array): Uint8Array {
  // attributes [0] IMPLICIT SET OF Attribute: a SET re-tagged as [0], constructed.
  const s = set(attribute);
  s[0] = context(0);
  return s;
}

/** What the CA learns from a request whose signature checked out. */
export interface ParsedCsr {
  /** The SubjectPublicKeyInfo, exactly as sent (goes into the certificate unchanged). */
  spki: Uint8Array;
  publicKey: KeyObject;
  /** URIs in the subjectAltName extension request. */
  uris: string[];
  /** Other subjectAltName entries (DNS names, IPs, …): a workload certificate carries none. */
  otherNames: number;
}

export class CsrError extends Error {}

/**
 * Reads a PEM (or DER) CSR and checks it: DER structure, version 1, an ECDSA P-256 key, an
 * ecdsa-with-SHA256 signature that verifies over the request info. Throws CsrError otherwise.
 */
export function parseCsr(input: string | Uint8Array): ParsedCsr {
  try {
    return parse(typeof input === 'string' ? fromPem(input, ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'], 16 * 1024) : input);
  } catch (e) {
    if (e instanceof CsrError) throw e;
    throw new CsrError(`malformed CSR: ${e instanceof DerError ? e.message : 'unreadable'}`);
  }
}

function parse(der: Uint8Array): ParsedCsr {
  if (der.length > 16 * 1024) throw new CsrError('CSR too large');
  const top = children(expectTag(readOne(der), Tag.SEQUENCE, 'CertificationRequest'));
  if (top.length !== 3) throw new CsrError('malformed CSR: CertificationRequest must have 3 parts');
  const [info, algorithm, signatureNode] = top as [Node, Node, Node];
  const parts = children(expectTag(info, Tag.SEQUENCE, 'CertificationRequestInfo'));
  if (parts.length < 3 || parts.length > 4) throw new CsrError('malformed CSR: CertificationRequestInfo has the wrong number of parts');
  if (readSmallInteger(parts[0]!) !== 0) throw new CsrError('unsupported CSR version');
  expectTag(parts[1], Tag.SEQUENCE, 'subject Name');
  const spkiNode = expectTag(parts[2], Tag.SEQUENCE, 'SubjectPublicKeyInfo');

  const algParts = children(expectTag(algorithm, Tag.SEQUENCE, 'signature AlgorithmIdentifier'));
  if (algParts.length !== 1 || readOid(algParts[0]!) !== OID.ecdsaWithSha256) throw new CsrError('CSR must be signed with ecdsa-with-SHA256');

  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: Buffer.from(spkiNode.raw), format: 'der', type: 'spki' });
  } catch {
    throw new CsrError('malformed CSR: unreadable public key');
  }
  if (publicKey.asymmetricKeyType !== 'ec' || publicKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new CsrError(`workload keys must be ECDSA P-256, not ${publicKey.asymmetricKeyType}${publicKey.asymmetricKeyDetails?.namedCurve ? ` ${publicKey.asymmetricKeyDetails.namedCurve}` : ''}`);
  }
  let good = false;
  try {
    good = verify('sha256', info.raw, publicKey, readBitString(signatureNode));
  } catch {
    good = false;
  }
  if (!good) throw new CsrError('CSR signature does not verify');

  const names = { uris: [] as string[], otherNames: 0 };
  if (parts[3]) readAttributes(expectTag(parts[3], context(0), 'attributes [0]'), names);
  return { spki: new Uint8Array(spkiNode.raw), publicKey, ...names };
}

function readAttributes(attributes: Node, names: { uris: string[]; otherNames: number }): void {
  let sawSan = false;
  for (const attribute of children(attributes)) {
    const [type, values] = children(expectTag(attribute, Tag.SEQUENCE, 'Attribute'));
    if (!type || !values) throw new CsrError('malformed CSR attribute');
    if (readOid(type) !== OID.extensionRequest) continue;
    const requested = children(expectTag(values, Tag.SET, 'attribute values'));
    if (requested.length !== 1) throw new CsrError('malformed CSR: extensionRequest must have one value');
    for (const extension of children(expectTag(requested[0], Tag.SEQUENCE, 'Extensions'))) {
      const fields = children(expectTag(extension, Tag.SEQUENCE, 'Extension'));
      if (fields.length < 2 || fields.length > 3) throw new CsrError('malformed CSR extension');
      if (readOid(fields[0]!) !== OID.subjectAltName) continue;
      if (sawSan) throw new CsrError('CSR asks for subjectAltName twice');
      sawSan = true;
      const value = expectTag(fields[fields.length - 1], Tag.OCTET_STRING, 'extnValue');
      for (const name of children(expectTag(readOne(value.content), Tag.SEQUENCE, 'GeneralNames'))) {
        if (name.tag !== URI_NAME_TAG) {
          names.otherNames++;
          continue;
        }
        const text = Buffer.from(name.content).toString('latin1');
        if (!/^[\x21-\x7e]*$/.test(text)) throw new CsrError('malformed CSR: URI name is not printable ASCII');
        names.uris.push(text);
      }
    }
  }
}
