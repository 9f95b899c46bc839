package primero

import (
	"bytes"
	"encoding/json"
	"testing"
)

// The hand-written encoder must produce what encoding/json produces for
// every JSON-shaped value a record can hold.
func TestServer_EncoderMatchesEncodingJSON(t *testing.T) {
	values := []any{
		nil, true, false, 0.0, 12.0, -3.0, 1e20, 1e21, 0.5, 44658411789514.0, "", "plain", "quote \" back \\ slash",
		"tab\tnew\nline\rcr \x01 \x1f", "<tag> & amp", "line\u2028sep\u2029para", "ünïcödé ខ្មែរ", []any{},
		[]any{"a", 1.0, nil, map[string]any{"z": 1.0, "a": []any{true}}}, map[string]any{}, 7,
	}
	for _, v := range values {
		var b bytes.Buffer
		writeValue(&b, v)
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if b.String() != string(want) {
			t.Errorf("writeValue(%#v) = %s, want %s", v, b.String(), want)
		}
	}
}

func FuzzWriteString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\u2028", "<&>", "\x00\x7f", "ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// encoding/json rewrites invalid UTF-8; record strings come from a
		// JSON decoder or the generator and are always valid.
		var decoded string
		raw, _ := json.Marshal(s)
		if err := json.Unmarshal(raw, &decoded); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		writeString(&b, decoded)
		want, _ := json.Marshal(decoded)
		if b.String() != string(want) {
			t.Errorf("writeString(%q) = %s, want %s", decoded, b.String(), want)
		}
	})
}
