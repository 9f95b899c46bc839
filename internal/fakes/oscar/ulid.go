package oscar

import "time"

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// newULID encodes a 48-bit millisecond timestamp and 80 bits of entropy as
// the 26-character Crockford base32 string OSCaR uses for global_id.
func newULID(t time.Time, hi uint16, lo uint64) string {
	ms := uint64(t.UnixMilli()) & (1<<48 - 1)
	// 128 bits as two words: [ms:48 | hi:16] [lo:64].
	h := ms<<16 | uint64(hi)
	l := lo
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[l&31]
		l = l>>5 | h<<59
		h >>= 5
	}
	return string(out[:])
}

// isULID reports whether s looks like a ULID: 26 Crockford characters with
// a first character of at most 7.
func isULID(s string) bool {
	if len(s) != 26 || s[0] > '7' {
		return false
	}
	for i := 0; i < len(s); i++ {
		ok := false
		for j := 0; j < len(crockford); j++ {
			if s[i] == crockford[j] {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
