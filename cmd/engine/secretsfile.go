package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// parseSecretsFile reads the usual dotenv form, so the same file serves
// systemd, docker --env-file users and a shell's `set -a; . file`:
//
//	# a comment
//	PRIMERO_USER=cp_admin
//	export OSCAR_EMAIL=ops@example.org    # trailing comment
//	PRIMERO_PASSWORD='literal, with $ and # kept'
//	OSCAR_PASSWORD="escapes: \" \\ \n"
//
// Unlike some dotenv loaders it never expands $VAR: a password holding a
// dollar sign must arrive as written. A later line for the same name wins.
// Errors give file:line and never the line itself, which may hold a value.
func parseSecretsFile(r io.Reader, file string) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if rest, ok := strings.CutPrefix(t, "export"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			t = strings.TrimSpace(rest)
		}
		k, v, ok := strings.Cut(t, "=")
		k = strings.TrimSpace(k)
		if !ok || !validSecretName(k) {
			return nil, fmt.Errorf("%s:%d: want NAME=VALUE (NAME of letters, digits and _)", file, line)
		}
		val, err := secretValue(strings.TrimLeft(v, " \t"))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %w", file, line, k, err)
		}
		out[k] = val
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return out, nil
}

func validSecretName(k string) bool {
	if k == "" || (k[0] >= '0' && k[0] <= '9') {
		return false
	}
	for _, c := range k {
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// secretValue reads the value part: quoted, or bare up to a " #" comment.
func secretValue(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	var val, rest string
	switch v[0] {
	case '\'':
		end := strings.IndexByte(v[1:], '\'')
		if end < 0 {
			return "", fmt.Errorf("unterminated ' quote (values span one line)")
		}
		val, rest = v[1:1+end], v[2+end:]
	case '"':
		var b strings.Builder
		i := 1
		for ; i < len(v) && v[i] != '"'; i++ {
			if v[i] != '\\' || i+1 == len(v) {
				b.WriteByte(v[i])
				continue
			}
			i++
			switch v[i] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '"', '\\', '$', '`':
				b.WriteByte(v[i])
			default:
				b.WriteByte('\\')
				b.WriteByte(v[i])
			}
		}
		if i == len(v) {
			return "", fmt.Errorf(`unterminated " quote (values span one line)`)
		}
		val, rest = b.String(), v[i+1:]
	default:
		if i := strings.Index(v, " #"); i >= 0 {
			v = v[:i]
		} else if i := strings.Index(v, "\t#"); i >= 0 {
			v = v[:i]
		}
		return strings.TrimRight(v, " \t"), nil
	}
	if rest = strings.TrimSpace(rest); rest != "" && !strings.HasPrefix(rest, "#") {
		return "", fmt.Errorf("text after the closing quote")
	}
	return val, nil
}
