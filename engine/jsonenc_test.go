package engine

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
)

// The values a payload holds, and the strings and numbers whose encoding
// json.Marshal has rules for.
var marshalCases = []any{
	nil, true, false, "", "plain", `quote " and \ backslash`, "<b>&amp;</b>", "tab\tnew\nline\x01", "\u2028", "caf\xe9", "ខ្មែរ", "é😀",
	0.0, math.Copysign(0, -1), 1.0, -1.5, 1e20, 1e21, 1e-6, 1e-7, 123456789.123, 1.7976931348623157e308, 5e-324, math.NaN(), math.Inf(1),
	int(-3), int64(1 << 60), int32(7), uint64(1 << 63), float32(1.1), json.Number("12"),
	[]any{}, []any(nil), map[string]any{}, map[string]any(nil),
	map[string]any{"b": 1.0, "a": []any{"x", nil, map[string]any{"z": true, "é": "<"}}, "": "empty key", "k\"": 2.0},
	map[string]any{"s": []string{"typed"}, "n": 1.0}, []any{1.0, struct{ A int }{1}},
}

func TestMarshalJSON_SameAsEncodingJSON(t *testing.T) {
	for _, v := range marshalCases {
		want, werr := json.Marshal(v)
		got, gerr := MarshalJSON(v)
		if !bytes.Equal(got, want) || (gerr == nil) != (werr == nil) {
			t.Errorf("%#v: got %s, %v; want %s, %v", v, got, gerr, want, werr)
		}
	}
	many := map[string]any{}
	for i := range 40 { // more keys than the sort's stack buffer
		many[string(rune('a'+i%26))+string(rune('A'+i))] = float64(i)
	}
	want, _ := json.Marshal(many)
	if got, _ := MarshalJSON(many); !bytes.Equal(got, want) {
		t.Errorf("40 keys: got %s, want %s", got, want)
	}
}

// FuzzMarshalJSON holds MarshalJSON to json.Marshal's bytes on any JSON
// value (decoded from the input) and any string and number.
func FuzzMarshalJSON(f *testing.F) {
	f.Add([]byte(`{"a": [1, 2.5e-7, "x<y"], "b": {"c": null, "d": true}}`), "caf\xe9 \u2028 \"q\"", 1e21, int64(-42))
	f.Fuzz(func(t *testing.T, data []byte, s string, x float64, n int64) {
		var v any
		if json.Unmarshal(data, &v) != nil {
			v = nil
		}
		for _, val := range []any{v, s, x, n, map[string]any{s: x, "v": v, "n": n}, []any{s, v}} {
			want, werr := json.Marshal(val)
			got, gerr := MarshalJSON(val)
			if !bytes.Equal(got, want) || (gerr == nil) != (werr == nil) {
				t.Fatalf("%#v: got %s, %v; want %s, %v", val, got, gerr, want, werr)
			}
		}
	})
}

// BenchmarkMarshalJSON encodes a payload shaped like an OSCaR client
// upsert (about twenty fields, a nested list) with MarshalJSON and, for
// comparison, json.Marshal.
func BenchmarkMarshalJSON(b *testing.B) {
	payload := map[string]any{
		"external_id": "b77305d7-22b3-4a6c-98e1-94857141787a", "external_id_display": "141787a", "global_id": "G-000123",
		"level_of_risk": "medium", "mosvy_number": "", "given_name": "Daneka", "family_name": "Pan", "gender": "female",
		"date_of_birth": "2016-12-09", "location_current_village_code": "12020101", "address_current_village_code": "12020101",
		"reason_for_referral": "Referred for case management: unaccompanied child", "organization_name": "ngo1",
		"case_worker_name": "Case Worker", "case_worker_mobile": "0984746444", "is_referred": true, "referral_id": 4711.0,
		"services": []any{map[string]any{"uuid": "s-1", "name": "Family Tracing"}, map[string]any{"uuid": "s-2", "name": "Counselling"}},
	}
	for _, bc := range []struct {
		name string
		enc  func(any) ([]byte, error)
	}{{"MarshalJSON", MarshalJSON}, {"encoding_json", json.Marshal}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.enc(payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
