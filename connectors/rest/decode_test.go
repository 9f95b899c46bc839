package rest

import (
	"encoding/json"
	"errors"
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
	bodies := []string{
		"", "  \n", "null", "1", `"s"`, "true", "[]", "{}", "[1, [2, 3], {\"a\": [4]}]",
		`{"a": 1, "a": 2}`, `{"a": [1, 2], "b": {"c": [3]}}`, page,
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
