// The one way a 9P name's bytes become text, everywhere (keys, listings,
// attach paths, the CLI and the page).
//
// A name is bytes on the wire (9p-wire.md: s[2] strings are not NUL-ended
// and carry no encoding of their own); a file's R2 key is text. The
// WHATWG TextDecoder drops a leading U+FEFF (a byte-order mark) unless told
// not to (Encoding Standard, "UTF-8 decode": BOM sniffing), so the names
// "\ufeffhello.txt" and "hello.txt" decoded to one key, and "\ufeff.." to
// "..". Decoding must be one-to-one: the BOM is kept, and bytes that are not
// UTF-8 are an error instead of U+FFFD (two different bad names would
// otherwise share one key).

const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const lossy = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/** A name's text, exactly; throws a TypeError for bytes that are not UTF-8. */
export function nameText(name: Uint8Array): string {
  return strict.decode(name);
}

/**
 * A name's text for showing to a person: a leading U+FEFF kept (so two
 * names never look the same), bad UTF-8 as U+FFFD. Never for keys.
 */
export function shownName(name: Uint8Array): string {
  return lossy.decode(name);
}
