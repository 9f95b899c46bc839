package sql

import (
	"fmt"
	"net/url"
	"strings"
)

// dialect is what differs between the two databases: the driver, its DSN
// and how a statement names its parameters.
type dialect struct {
	name   string // postgres, sqlite
	driver string // database/sql driver name
	dsn    string // what the driver is opened with
	// dollar: parameters are $1, $2 … (PostgreSQL) rather than ?.
	dollar bool
	// maxParams bounds the parameters of one statement.
	maxParams int
}

// dialectFor chooses the driver by the DSN's scheme.
func dialectFor(dsn string) (dialect, error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		u, err := url.Parse(dsn)
		if err != nil {
			// Not the DSN's text: it holds the password.
			return dialect{}, fmt.Errorf("the postgres DSN is not a URL")
		}
		q := u.Query()
		if !q.Has("default_query_exec_mode") {
			// A page's INSERT has as many rows as the page wrote, so its
			// text differs from page to page: pgx's default would keep a
			// prepared statement for each, on every connection. exec sends
			// each once, its values still bound parameters.
			q.Set("default_query_exec_mode", "exec")
			u.RawQuery = q.Encode()
		}
		return dialect{name: "postgres", driver: "pgx", dsn: u.String(), dollar: true, maxParams: 65535}, nil
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "//")
		query := ""
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path, query = path[:i], path[i+1:]
		}
		if path == "" {
			return dialect{}, fmt.Errorf("sqlite DSN names no file (write sqlite:/path/to/file.db)")
		}
		// A dashboard file may be read while the engine writes it.
		params := []string{"_pragma=busy_timeout(5000)", "_pragma=journal_mode(WAL)", "_txlock=immediate"}
		if query != "" {
			params = append(params, query)
		}
		u := url.URL{Scheme: "file", Path: path}
		return dialect{name: "sqlite", driver: "sqlite", dsn: u.String() + "?" + strings.Join(params, "&"), maxParams: 32000}, nil
	}
	return dialect{}, fmt.Errorf("DSN scheme not supported: write postgres://… or sqlite:/path")
}

// param is the n-th (1-based) parameter of a statement.
func (d dialect) param(n int) string {
	if d.dollar {
		return fmt.Sprintf("$%d", n)
	}
	return "?"
}

// quote quotes an identifier, schema-qualified or not. engine check has
// already refused anything but letters, digits and _; quoting keeps a
// reserved word (a column named "order") a name.
func quote(ident string) string {
	parts := strings.Split(ident, ".")
	for i, p := range parts {
		parts[i] = `"` + strings.ReplaceAll(p, `"`, `""`) + `"`
	}
	return strings.Join(parts, ".")
}

// bindNamed turns the engine's named parameters in a select ($cursor,
// $now) into the dialect's placeholders, outside string literals, quoted
// identifiers and comments, and returns the values in placeholder order.
func (d dialect) bindNamed(stmt string, values map[string]any, first int) (string, []any, error) {
	var out strings.Builder
	var args []any
	for i := 0; i < len(stmt); i++ {
		c := stmt[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(stmt) && stmt[j] != c {
				j++
			}
			if j >= len(stmt) {
				j = len(stmt) - 1
			}
			out.WriteString(stmt[i : j+1])
			i = j
		case c == '-' && i+1 < len(stmt) && stmt[i+1] == '-':
			j := strings.IndexByte(stmt[i:], '\n')
			if j < 0 {
				j = len(stmt) - i
			}
			out.WriteString(stmt[i : i+j])
			i += j - 1
		case c == '$' && i+1 < len(stmt) && isIdentStart(stmt[i+1]):
			j := i + 1
			for j < len(stmt) && isIdentChar(stmt[j]) {
				j++
			}
			name := stmt[i+1 : j]
			v, ok := values[name]
			if !ok {
				return "", nil, fmt.Errorf("$%s is not a parameter the engine binds", name)
			}
			args = append(args, v)
			out.WriteString(d.param(first + len(args) - 1))
			i = j - 1
		default:
			out.WriteByte(c)
		}
	}
	return out.String(), args, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdentChar(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
