package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

// decodeWhole is how a body was decoded before listings were streamed: one
// json.Decoder value, then nothing but EOF. decodeJSON must answer the same.
func decodeWhole(r io.Reader) (any, error) {
	dec := json.NewDecoder(r)
	var v any
	if err := dec.Decode(&v); err != nil {
		if err == io.EOF {
			return nil, nil
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, errNotJSON
		}
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		var se *json.SyntaxError
		if err == nil || errors.As(err, &se) {
			return nil, errNotJSON
		}
		return nil, err
	}
	return v, nil
}

func TestDecodeJSON_SameAsWholeValue(t *testing.T) {
	page := `{"data": [` + strings.Repeat(`{"id": "a", "n": 1.5, "tags": ["x", {"y": null}], "ok": true},`, 300) +
		`{"id": "z"}], "metadata": {"total": 301, "page": [1, 2]}, "data2" : [ ], "s": "x"}`
	// Strings past the decoder's threshold for reusing them, and an
	// object key longer than the strings it reuses.
	repeated := `[` + strings.Repeat(`{"same": "value", "`+strings.Repeat("k", 70)+`": "v"},`, 40) + `{}]`
	bodies := []string{
		"", "  \n", "null", "1", `"s"`, "true", "[]", "{}", "[1, [2, 3], {\"a\": [4]}]",
		`{"a": 1, "a": 2}`, `{"a": [1, 2], "b": {"c": [3]}}`, page, repeated,
		// numbers, escapes and bytes that are not UTF-8 (replaced as
		// encoding/json replaces them)
		"-0", "0.1", "1e3", "-12345678901234567890", "123456789012345", "1E-7", "1e400",
		`"a\nb\u00e9\ud83d\ude00\/"`, `"\ud800x"`, "\"caf\xe9\"", "{\"k\xff\": \"v\"}", `"\u0000"`,
		`[01]`, `[1.]`, `[.5]`, `[-]`, `["a\x"]`, "[\"\t\"]", `[tru]`, `[nul]`,
		// not JSON, or JSON followed by more
		"<html>", "{} {}", "[1] x", `{"a": 1}}`, `{"a" 1}`, `{"a": [1 2]}`, `[1,]`, `{1: 2}`,
		// broken off
		`{"data": [{"id": "a"}, {"id"`, `{"data": [`, `[1, 2`, `{"a": {"b": 1`, `{"a"`, `{`, `[`,
	}
	readers := map[string]func(string) io.Reader{
		"whole":     func(s string) io.Reader { return strings.NewReader(s) },
		"byte-wise": func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
		"halves":    func(s string) io.Reader { return iotest.HalfReader(strings.NewReader(s)) },
	}
	for _, body := range bodies {
		for name, rd := range readers {
			want, werr := decodeWhole(rd(body))
			got, gerr := decodeJSON(rd(body))
			if !errors.Is(gerr, werr) && (gerr == nil || werr == nil || gerr.Error() != werr.Error()) {
				t.Errorf("%s %.40q: error %v, want %v", name, body, gerr, werr)
				continue
			}
			if !cmp.Equal(got, want) {
				t.Errorf("%s %.40q: got %v, want %v", name, body, got, want)
			}
		}
	}
	// A read error inside the body is returned as is.
	broken := io.MultiReader(strings.NewReader(`{"data": [{"id": 1}, `), iotest.ErrReader(errTooLarge))
	if _, err := decodeJSON(broken); !errors.Is(err, errTooLarge) {
		t.Errorf("read error: got %v, want errTooLarge", err)
	}
}

// FuzzDecodeJSON holds decodeJSON to what encoding/json answers for the
// whole body, on any bytes.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"data": [{"id": "a", "n": 1.5}, {"id": "b"}], "metadata": {"total": 2}}`,
		`"a\u00e9"`, "[\"caf\xe9\"]", `[1e400]`, `{"a": 1, "a": [true, null]}`, `[01]`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		want, werr := decodeWhole(bytes.NewReader(body))
		got, gerr := decodeJSON(bytes.NewReader(body))
		if gerr != nil && errors.As(werr, new(*json.UnmarshalTypeError)) {
			// A number no float64 holds: refused by both, though not
			// always with the same error when more follows ("0" then
			// "2e999" is more JSON to one, a bad number to the other).
			return
		}
		if (gerr == nil) != (werr == nil) || gerr != nil && !errors.Is(gerr, werr) && gerr.Error() != werr.Error() {
			t.Fatalf("%q: error %v, want %v", body, gerr, werr)
		}
		if !cmp.Equal(got, want) {
			t.Fatalf("%q: got %v, want %v", body, got, want)
		}
	})
}

// benchPage is a listing page of 500 records shaped like Primero's cases
// (about 1.5 kB each: ids, names, dates, flags, numbers, lists and a
// nested list of services).
func benchPage() []byte {
	recs := make([]map[string]any, 500)
	for i := range recs {
		rec := map[string]any{
			"id": fmt.Sprintf("95352585-84bb-4025-8131-%012d", i), "case_id": fmt.Sprintf("b77305d7-22b3-4a6c-98e1-%012d", i),
			"case_id_display": fmt.Sprintf("%07d", i), "enabled": true, "age": i % 18, "sex": []string{"female", "male"}[i%2],
			"name_first": fmt.Sprintf("Name%d", i%97), "name_last": fmt.Sprintf("Family%d", i%89), "date_of_birth": "2016-12-09",
			"created_at": "2025-06-27T21:41:47.943Z", "last_updated_at": "2025-08-02T09:38:34.074Z", "owned_by": "unhcr_cw",
			"owned_by_agency_id": "agency-unhcr", "owned_by_groups": []string{"usergroup-unhcr"}, "location_current": "ET120201",
			"risk_level": "medium", "consent_for_services": true, "disclosure_other_orgs": i%3 != 0, "module_id": "primeromodule-cp",
			"nationality": []string{"south_sudan"}, "protection_concerns": []string{"unaccompanied", "separated"}, "record_state": true,
			"assigned_user_names": []string{}, "associated_user_names": []string{"unhcr_cw"}, "registration_date": "2025-06-27",
		}
		for k := range 12 {
			rec[fmt.Sprintf("field_%02d", k)] = fmt.Sprintf("value %d of record %d", k, i%50)
		}
		rec["services_section"] = []map[string]any{{
			"unique_id": fmt.Sprintf("s-%d", i), "service_type": "case_work", "service_response_type": "referral_to_oscar",
			"service_implementing_agency": "agency-ngo1", "service_appointment_date": "2025-06-30", "service_request_external": true,
		}}
		recs[i] = rec
	}
	b, err := json.Marshal(map[string]any{"data": recs, "metadata": map[string]any{"total": 10000, "per": 500, "page": 1}})
	if err != nil {
		panic(err)
	}
	return b
}

// BenchmarkDecodeJSON_Page decodes a 500-record listing page (per op)
// with decodeJSON and, for comparison, with encoding/json into an any.
func BenchmarkDecodeJSON_Page(b *testing.B) {
	page := benchPage()
	for _, bc := range []struct {
		name   string
		decode func(io.Reader) (any, error)
	}{{"decodeJSON", decodeJSON}, {"encoding_json", decodeWhole}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(page)))
			for b.Loop() {
				if _, err := bc.decode(bytes.NewReader(page)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
