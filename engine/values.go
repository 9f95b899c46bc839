package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
)

func ScalarString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		if x == float64(int64(x)) {
			return fmt.Sprintf("%d", int64(x))
		}
		return fmt.Sprint(x)
	case json.Number:
		return x.String()
	case int:
		return fmt.Sprint(x)
	case bool:
		return fmt.Sprint(x)
	}
	return ""
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// payloadHash is the hash of the payload's canonical JSON (sorted keys).
func payloadHash(p any) string {
	h := jsonHash(p)
	return hex.EncodeToString(h[:16])
}

func shortHash(v any) string {
	h := jsonHash(v)
	return hex.EncodeToString(h[:4])
}

// hashBufs keeps the encoding buffers of jsonHash: the bytes are only
// hashed, so one buffer serves hash after hash.
var hashBufs = sync.Pool{New: func() any { return new([]byte) }}

// jsonHash is the SHA-256 of v's json.Marshal encoding.
func jsonHash(v any) [sha256.Size]byte {
	bp := hashBufs.Get().(*[]byte)
	defer hashBufs.Put(bp)
	b, ok := appendJSON((*bp)[:0], v)
	if !ok {
		b, _ = json.Marshal(v)
	} else if cap(b) <= 64<<10 {
		*bp = b // a rare huge payload's buffer is not kept
	}
	return sha256.Sum256(b)
}

// isSubset reports whether every field of want has the same value in have
// (dry-run's "the target already says this").
func isSubset(want, have any) bool {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			if !isSubset(wv, h[k]) {
				return false
			}
		}
		return true
	default:
		wb, _ := json.Marshal(want)
		hb, _ := json.Marshal(have)
		return string(wb) == string(hb)
	}
}
