/**
 * The two wire formats of the EC2 Query protocol, generically: form parameters in, XML out.
 * Handlers build plain objects and never write XML strings, so an element name is spelled once.
 */

/** A decoded Query parameter: `A.1.B=x` becomes `{ A: [{ B: 'x' }] }`. */
export type QueryValue = string | QueryValue[] | QueryParams;
export interface QueryParams {
  [key: string]: QueryValue;
}

interface Tree {
  [key: string]: Tree | string;
}

/**
 * Decodes `Filter.1.Name=x&Filter.1.Value.1=y` into `{ Filter: [{ Name: 'x', Value: ['y'] }] }`.
 * A numeric segment is a 1-based list index; an object whose keys are all numeric becomes an
 * array in index order (gaps closed up), which is how EC2 reads them too.
 */
export function decodeQuery(body: URLSearchParams): QueryParams {
  const root: Tree = {};
  for (const [key, value] of body) {
    const segments = key.split('.');
    let node = root;
    segments.forEach((segment, i) => {
      if (i === segments.length - 1) {
        node[segment] = value;
        return;
      }
      const next = node[segment];
      if (typeof next === 'object') {
        node = next;
      } else {
        const created: Tree = {};
        node[segment] = created;
        node = created;
      }
    });
  }
  return toParams(root);
}

function toParams(tree: Tree): QueryParams {
  const out: QueryParams = {};
  for (const [key, value] of Object.entries(tree)) out[key] = toValue(value);
  return out;
}

function toValue(value: Tree | string): QueryValue {
  if (typeof value === 'string') return value;
  const keys = Object.keys(value);
  if (keys.length > 0 && keys.every((k) => /^\d+$/.test(k))) {
    return keys
      .map(Number)
      .sort((a, b) => a - b)
      .map((k) => toValue(value[String(k)] as Tree | string));
  }
  return toParams(value);
}

/** What a response may hold; `undefined` and `null` members are left out, as AWS leaves out unset fields. */
export type XmlValue =
  string | number | boolean | Date | undefined | null | XmlValue[] | { [key: string]: XmlValue };

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/**
 * One element. Arrays are EC2 lists: `<fooSet><item>…</item></fooSet>` (every list member in the
 * EC2 model is named `item`, unlike awsQuery's `member`). Dates are ISO 8601, which the SDK's
 * timestamp parser expects for EC2.
 */
export function toXml(name: string, value: XmlValue): string {
  if (value === undefined || value === null) return '';
  if (Array.isArray(value)) {
    if (value.length === 0) return `<${name}/>`;
    return `<${name}>${value.map((v) => toXml('item', v)).join('')}</${name}>`;
  }
  if (value instanceof Date) return `<${name}>${value.toISOString()}</${name}>`;
  if (typeof value === 'object') {
    const inner = Object.entries(value)
      .map(([k, v]) => toXml(k, v))
      .join('');
    return `<${name}>${inner}</${name}>`;
  }
  return `<${name}>${escapeXml(String(value))}</${name}>`;
}

export const EC2_NAMESPACE = 'http://ec2.amazonaws.com/doc/2016-11-15/';

/** A success body: `<RunInstancesResponse xmlns=…><requestId/>…members…</RunInstancesResponse>` (no Result wrapper in EC2). */
export function responseXml(action: string, requestId: string, members: Record<string, XmlValue>): string {
  const inner = Object.entries(members)
    .map(([k, v]) => toXml(k, v))
    .join('');
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<${action}Response xmlns="${EC2_NAMESPACE}"><requestId>${requestId}</requestId>${inner}</${action}Response>`
  );
}

/** EC2's error body, which differs from every other AWS Query service (`Response/Errors/Error`, `RequestID`). */
export function errorXml(code: string, message: string, requestId: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Response><Errors><Error><Code>${escapeXml(code)}</Code><Message>${escapeXml(message)}</Message></Error></Errors>` +
    `<RequestID>${requestId}</RequestID></Response>`
  );
}
