package rest

import (
	"encoding/json"
	"errors"
	"hash/maphash"
	"io"
	"reflect"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// decodeJSON decodes one JSON value; an empty body is nil. A body that is
// not JSON is errNotJSON; a read that breaks off is returned as is.
//
// The result is what encoding/json gives for the whole body decoded into
// an any (TestDecodeJSON_SameAsWholeValue, FuzzDecodeJSON), read in one
// pass with jsontext's tokenizer: json.Decoder scans each value twice
// (once to find its end, once to build it) and allocates every object
// key anew, which made decoding a listing page of case records about
// 30 µs and 150 allocations a case. The decoder holds a token at a time,
// never a page's megabytes.
func decodeJSON(r io.Reader) (any, error) {
	d := decoders.Get().(*jsonDecoder)
	defer d.release()
	d.dec.Reset(r, decodeOptions...)
	if d.dec.PeekKind() == 0 {
		if _, err := d.dec.ReadToken(); err == io.EOF {
			return nil, nil // an empty (or blank) body
		}
	}
	v, err := d.value(0)
	if err != nil {
		return nil, d.fail(err)
	}
	if _, err := d.dec.ReadToken(); err != io.EOF {
		if err == nil {
			return nil, errNotJSON // JSON followed by more
		}
		return nil, d.fail(err)
	}
	return v, nil
}

// decodeOptions make jsontext accept what encoding/json accepts: a name
// twice in an object (the last wins), strings that are not UTF-8.
var decodeOptions = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

// decoders keeps decoders and their buffers between bodies: a jsontext
// decoder and its first buffers were a kilobyte of garbage per request.
var decoders = sync.Pool{New: func() any { return &jsonDecoder{dec: jsontext.NewDecoder(noBody{})} }}

type noBody struct{}

func (noBody) Read([]byte) (int, error) { return 0, io.EOF }

// release forgets the body (its reader, and the strings it reused, which
// may be a token of a login's answer) and returns d to the pool.
func (d *jsonDecoder) release() {
	d.dec.Reset(noBody{})
	if d.strs != nil {
		clear(d.strs[:])
	}
	d.nstrs = 0
	decoders.Put(d)
}

// jsonDecoder builds the values of one body.
type jsonDecoder struct {
	dec *jsontext.Decoder
	// strs holds recent short strings, so the keys and values that every
	// record of a page repeats ("case_id", "female") are allocated once a
	// body, not once a record. Made once the body has shown it has many
	// strings: a create's small answer does not pay for it.
	strs  *[1024]string
	nstrs int
}

// fail turns a tokenizer error into what encoding/json reports: a body
// that ends inside a value is io.ErrUnexpectedEOF, any other syntax error
// errNotJSON, a read error itself.
func (d *jsonDecoder) fail(err error) error {
	var se *jsontext.SyntacticError
	switch {
	case errors.As(err, &se) && errors.Is(se.Err, io.ErrUnexpectedEOF):
		return io.ErrUnexpectedEOF
	case se != nil:
		return errNotJSON
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		return io.ErrUnexpectedEOF
	case errors.As(err, new(*json.UnmarshalTypeError)):
		return err // a number float64 cannot hold, as encoding/json says
	}
	if inner := errors.Unwrap(err); inner != nil {
		return inner // jsontext's wrapper of the reader's error
	}
	return err
}

// value decodes the next value; an object is made with room for size
// members.
func (d *jsonDecoder) value(size int) (any, error) {
	switch d.dec.PeekKind() {
	case '{':
		return d.object(size)
	case '[':
		return d.array()
	}
	raw, err := d.dec.ReadValue()
	if err != nil {
		return nil, err
	}
	switch raw[0] {
	case '"':
		return d.str(raw), nil
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case 'n':
		return nil, nil
	}
	return number(raw)
}

func (d *jsonDecoder) object(size int) (any, error) {
	if _, err := d.dec.ReadToken(); err != nil {
		return nil, err
	}
	m := make(map[string]any, size)
	for {
		switch d.dec.PeekKind() {
		case '"':
		case '}':
			_, err := d.dec.ReadToken()
			return m, err
		case 0:
			_, err := d.dec.ReadToken() // what stopped the peek
			return nil, err
		default:
			// A name that is not a string: jsontext would read it as a
			// value.
			return nil, errNotJSON
		}
		name, err := d.dec.ReadValue()
		if err != nil {
			return nil, err
		}
		key := d.str(name)
		v, err := d.value(0)
		if err != nil {
			return nil, err
		}
		m[key] = v // the last of duplicate names wins, as in encoding/json
	}
}

func (d *jsonDecoder) array() (any, error) {
	if _, err := d.dec.ReadToken(); err != nil {
		return nil, err
	}
	arr := []any{}
	// The records of a page have about as many fields as the one before:
	// a map made that large at once is not grown (and rehashed) several
	// times on the way, which was a third of decoding a page.
	size := 0
	for d.dec.PeekKind() != ']' {
		v, err := d.value(size)
		if err != nil {
			return nil, err
		}
		if m, ok := v.(map[string]any); ok {
			size = len(m)
		}
		arr = append(arr, v)
	}
	_, err := d.dec.ReadToken()
	return arr, err
}

// str is the string a JSON string literal (quotes included) stands for.
func (d *jsonDecoder) str(raw jsontext.Value) string {
	inner := raw[1 : len(raw)-1]
	if !hasEscape(inner) && utf8.Valid(inner) {
		return d.intern(inner)
	}
	// Escapes or invalid UTF-8 (which encoding/json replaces byte by
	// byte): rare in the data, so encoding/json unquotes it itself.
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		// jsontext accepted it, so this does not happen; keep the bytes.
		return string(inner)
	}
	return s
}

func hasEscape(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

var internSeed = maphash.MakeSeed()

// intern returns b as a string, from strs when a string equal to it was
// made recently.
func (d *jsonDecoder) intern(b []byte) string {
	const minStrs, maxLen = 32, 64
	if len(b) > maxLen {
		return string(b)
	}
	if d.nstrs < minStrs {
		d.nstrs++
		return string(b)
	}
	if d.strs == nil {
		d.strs = new([1024]string)
	}
	slot := &d.strs[maphash.Bytes(internSeed, b)%uint64(len(d.strs))]
	if *slot != string(b) {
		*slot = string(b)
	}
	return *slot
}

// number is a JSON number's float64, as encoding/json decodes it; one
// float64 cannot hold (1e400) is refused as encoding/json refuses it.
func number(raw jsontext.Value) (any, error) {
	if len(raw) <= 15 {
		// Up to 15 digits is exact in a float64: no need for ParseFloat.
		n, neg, i := 0, raw[0] == '-', 0
		if neg {
			i = 1
		}
		for ; i < len(raw) && raw[i] >= '0' && raw[i] <= '9'; i++ {
			n = n*10 + int(raw[i]-'0')
		}
		if i == len(raw) {
			if neg {
				return -float64(n), nil
			}
			return float64(n), nil
		}
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return nil, &json.UnmarshalTypeError{Value: "number " + string(raw), Type: reflect.TypeFor[float64]()}
	}
	return f, nil
}
