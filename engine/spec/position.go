package spec

import (
	"errors"
	"os"
	"regexp"
	"strings"
	"unicode/utf8"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/token"

	"casesync/engine/mapping"
)

// A program (jq, expr, template) is a CUE string; its errors carry places
// inside the decoded text. The functions below turn such a place into a
// file position by re-reading the string literal from the source, so
// escapes, raw #"..."# strings and the stripped indentation of multi-line
// """ strings all land on the right column.

// srcPos is a 1-based line and byte column in a file.
type srcPos struct{ line, col int }

// literalMap scans the CUE string literal starting at off in data and
// returns, for each byte of the decoded string, the file position of the
// source character that produced it (plus one entry for the end). It
// returns nil when the literal cannot be followed (interpolation, an
// unknown escape) or does not decode to want.
func literalMap(data []byte, off int, want string) []srcPos {
	if off < 0 || off >= len(data) {
		return nil
	}
	i := off
	hashes := 0
	for i < len(data) && data[i] == '#' {
		hashes++
		i++
	}
	if i >= len(data) || (data[i] != '"' && data[i] != '\'') {
		return nil
	}
	q := data[i]
	d := newLitDecoder(data, hashes)
	triple := string([]byte{q, q, q})
	var ok bool
	if strings.HasPrefix(string(data[i:min(i+3, len(data))]), triple) {
		ok = d.multi(i+3, triple+strings.Repeat("#", hashes))
	} else {
		ok = d.single(i+1, string(q)+strings.Repeat("#", hashes))
	}
	if !ok || string(d.dec) != want {
		return nil
	}
	return d.out
}

// litDecoder decodes a CUE string literal, keeping for every decoded byte
// the source position it came from.
type litDecoder struct {
	data       []byte
	lineStarts []int
	escape     string
	out        []srcPos
	dec        []byte
}

func newLitDecoder(data []byte, hashes int) *litDecoder {
	d := &litDecoder{data: data, lineStarts: []int{0}, escape: `\` + strings.Repeat("#", hashes)}
	for i, c := range data {
		if c == '\n' {
			d.lineStarts = append(d.lineStarts, i+1)
		}
	}
	return d
}

// at is the line and column of byte offset o.
func (d *litDecoder) at(o int) srcPos {
	lo, hi := 0, len(d.lineStarts)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if d.lineStarts[mid] <= o {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return srcPos{line: lo + 1, col: o - d.lineStarts[lo] + 1}
}

// decodeOne decodes the character at i, appends it and returns the next
// index, or -1 when it cannot.
func (d *litDecoder) decodeOne(i int) int {
	data := d.data
	if strings.HasPrefix(string(data[i:min(i+len(d.escape)+1, len(data))]), d.escape) && i+len(d.escape) < len(data) {
		j := i + len(d.escape)
		s, n := d.unescape(j)
		if n < 0 {
			return -1
		}
		for range len(s) {
			d.out = append(d.out, d.at(i))
		}
		d.dec = append(d.dec, s...)
		return j + n
	}
	_, size := utf8.DecodeRune(data[i:])
	for k := range size {
		d.out = append(d.out, d.at(i+k))
	}
	d.dec = append(d.dec, data[i:i+size]...)
	return i + size
}

// unescape decodes the escape whose letter is at j: the text and how many
// bytes it took from j, or -1 for one we do not follow (interpolation).
func (d *litDecoder) unescape(j int) (string, int) {
	data := d.data
	switch c := data[j]; c {
	case 'a':
		return "\a", 1
	case 'b':
		return "\b", 1
	case 'f':
		return "\f", 1
	case 'n':
		return "\n", 1
	case 'r':
		return "\r", 1
	case 't':
		return "\t", 1
	case 'v':
		return "\v", 1
	case '\\', '/', '"', '\'':
		return string(c), 1
	case 'u', 'U':
		w := 4
		if c == 'U' {
			w = 8
		}
		if j+1+w > len(data) {
			return "", -1
		}
		var r rune
		for _, h := range data[j+1 : j+1+w] {
			v := hexVal(h)
			if v < 0 {
				return "", -1
			}
			r = r*16 + rune(v)
		}
		return string(r), 1 + w
	}
	return "", -1
}

// single decodes a one-line literal whose text starts at i.
func (d *litDecoder) single(i int, closer string) bool {
	data := d.data
	for {
		if i >= len(data) || data[i] == '\n' {
			return false
		}
		if strings.HasPrefix(string(data[i:min(i+len(closer), len(data))]), closer) {
			d.out = append(d.out, d.at(i))
			return true
		}
		if i = d.decodeOne(i); i < 0 {
			return false
		}
	}
}

// multi decodes a multi-line literal opened just before i: its lines lose
// the closing line's indentation.
func (d *litDecoder) multi(i int, closer string) bool {
	data := d.data
	nl := strings.IndexByte(string(data[i:]), '\n')
	if nl < 0 {
		return false
	}
	i += nl + 1
	lines, indent, ok := d.multiLines(i, closer)
	if !ok {
		return false
	}
	for n, ln := range lines {
		if n > 0 {
			d.out = append(d.out, d.at(lines[n-1][1]))
			d.dec = append(d.dec, '\n')
		}
		k := ln[0]
		if ln[1]-ln[0] >= len(indent) && string(data[k:k+len(indent)]) == indent {
			k += len(indent)
		} else if strings.TrimLeft(string(data[ln[0]:ln[1]]), " \t") != "" {
			return false
		} else {
			k = ln[1]
		}
		for k < ln[1] {
			if k = d.decodeOne(k); k < 0 {
				return false
			}
		}
	}
	if len(lines) > 0 {
		d.out = append(d.out, d.at(lines[len(lines)-1][1]))
	} else {
		d.out = append(d.out, d.at(i))
	}
	return true
}

// multiLines lists the content lines (start, end exclusive of the
// newline) from i up to the closing line, and that line's indentation.
func (d *litDecoder) multiLines(i int, closer string) (lines [][2]int, indent string, ok bool) {
	data := d.data
	for k := i; ; {
		end := k
		for end < len(data) && data[end] != '\n' {
			end++
		}
		line := string(data[k:end])
		trimmed := strings.TrimLeft(line, " \t")
		if strings.HasPrefix(trimmed, closer) {
			return lines, line[:len(line)-len(trimmed)], true
		}
		lines = append(lines, [2]int{k, end})
		if end >= len(data) {
			return nil, "", false
		}
		k = end + 1
	}
}

func hexVal(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// byteOffset turns a 1-based line and rune column inside text into a byte
// offset, clamped to the text.
func byteOffset(text string, line, col int) int {
	off := 0
	for l := 1; l < line; l++ {
		nl := strings.IndexByte(text[off:], '\n')
		if nl < 0 {
			return len(text)
		}
		off += nl + 1
	}
	for c := 1; c < col && off < len(text) && text[off] != '\n'; c++ {
		_, size := utf8.DecodeRuneInString(text[off:])
		off += size
	}
	return off
}

var (
	undefinedFunc = regexp.MustCompile(`function not defined: ([A-Za-z_][A-Za-z0-9_]*)/`)
	undefinedVar  = regexp.MustCompile(`variable not defined: (\$[A-Za-z_][A-Za-z0-9_]*)`)
)

// errOffset finds the byte offset inside src that err is about, when it
// can tell.
func errOffset(src string, err error) (int, bool) {
	var te *mapping.TemplateError
	if errors.As(err, &te) {
		base := min(max(te.Offset, 0), len(src))
		if off, ok := errOffset(src[base:], te.Err); ok {
			return base + off, true
		}
		return base, true
	}
	var ul *mapping.UnknownLookupError
	if errors.As(err, &ul) {
		re := regexp.MustCompile(`\br?lookup\(\s*("` + regexp.QuoteMeta(ul.Name) + `")`)
		if m := re.FindStringSubmatchIndex(src); m != nil {
			return m[2], true
		}
		return 0, false
	}
	var se *mapping.SyntaxError
	if errors.As(err, &se) {
		if se.Line > 0 {
			return byteOffset(src, se.Line, se.Col), true
		}
		if m := undefinedFunc.FindStringSubmatch(se.Msg); m != nil {
			return findIdent(src, m[1])
		}
		if m := undefinedVar.FindStringSubmatch(se.Msg); m != nil {
			return findIdent(src, m[1])
		}
	}
	return 0, false
}

// findIdent finds name in src as a whole word that is not a field access
// (.name) and not inside a jq string.
func findIdent(src, name string) (int, bool) {
	inStr := false
	for i := 0; i < len(src); i++ {
		c := src[i]
		if inStr {
			if c == '\\' {
				i++
			} else if c == '"' {
				inStr = false
			}
			continue
		}
		if c == '"' {
			inStr = true
			continue
		}
		if !strings.HasPrefix(src[i:], name) {
			continue
		}
		if i > 0 && (isIdent(src[i-1]) || src[i-1] == '.' || (src[i-1] == '$' && name[0] != '$')) {
			continue
		}
		if e := i + len(name); e < len(src) && isIdent(src[e]) {
			continue
		}
		return i, true
	}
	return 0, false
}

func isIdent(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// programPos returns the file position of byte off of the program src at
// the spec path at, whose string literal starts at lit, or lit itself when
// the literal cannot be followed. A program joined from strings (kh.Defs +
// "…") is followed into the part that holds off, so a mistake in a shared
// helper is placed in the library that wrote it.
func (l *loader) programPos(at []string, lit token.Pos, src string, off int) (file string, line, col int) {
	start := 0
	for _, p := range l.stringParts(at) {
		if off >= start && off < start+len(p.text) && p.pos.IsValid() {
			lit, src, off = p.pos, p.text, off-start
			break
		}
		start += len(p.text)
	}
	file, line, col = lit.Filename(), lit.Line(), lit.Column()
	data, err := l.readFile(file)
	if err != nil {
		return file, line, col
	}
	m := literalMap(data, lit.Offset(), src)
	if m == nil || off < 0 || off >= len(m) {
		return file, line, col
	}
	return file, m[off].line, m[off].col
}

// strPart is one string of a concatenation and where its literal starts.
type strPart struct {
	pos  token.Pos
	text string
}

// stringParts splits the string at `at` into the strings it is joined
// from (a + b + c), each where it is written: a reference to a library's
// string (png.SyncDataPath) is one part, written in the library.
func (l *loader) stringParts(at []string) []strPart {
	if !l.root.Exists() {
		return nil
	}
	var parts []strPart
	var walk func(v cue.Value, depth int) bool
	walk = func(v cue.Value, depth int) bool {
		op, args := v.Expr()
		switch {
		case depth > 8:
			return false
		case op == cue.AddOp:
			for _, a := range args {
				if !walk(a, depth+1) {
					return false
				}
			}
			return true
		case op == cue.SelectorOp && len(args) == 2:
			// m.Defs: the string is written where Defs is defined.
			if label, err := args[1].String(); err == nil {
				if f := args[0].LookupPath(cue.MakePath(cue.Str(label))); f.Exists() {
					return walk(f, depth+1)
				}
			}
			return false
		case op == cue.AndOp:
			// the schema's #JQ (a type) and the user's value: follow the value
			for _, a := range args {
				if a.IsConcrete() {
					return walk(a, depth+1)
				}
			}
			return false
		}
		s, err := v.String()
		if err != nil {
			return false
		}
		parts = append(parts, strPart{writtenPos(v), s})
		return true
	}
	if !walk(l.root.LookupPath(makePath(at...)), 0) {
		return nil
	}
	return parts
}

func (l *loader) readFile(name string) ([]byte, error) {
	if b, ok := l.sources[name]; ok {
		return b, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	if l.sources == nil {
		l.sources = map[string][]byte{}
	}
	l.sources[name] = b
	return b, nil
}
