package spec

import (
	"fmt"
	"regexp"
	"strings"

	"casesync/engine"
)

// The sql connector kind's checks: its sources, lookups and upserts name a
// sql connector, and every statement is one select whose only parameters
// are the engine's ($cursor, $now), so values are always bound.

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// kindOf is the kind of the named connector ("" when it is unknown).
func (b *builder) kindOf(name string) string {
	cs, ok := b.spec.Connectors[name]
	switch {
	case !ok:
		return ""
	case cs.SQL != nil:
		return "sql"
	}
	return "rest"
}

// needKind reports a connector of the wrong kind for its use.
func (b *builder) needKind(at []string, name, want, use string) {
	if k := b.kindOf(name); k != "" && k != want {
		what := map[string]string{"sql": "a sql connector", "rest": "an HTTP connector (base_url)"}
		b.problem(at, "connector-kind", "%s needs %s; %q is %s", use, what[want], name, what[k])
	}
}

// selectStmt checks a select: one statement that reads. params are the
// placeholders it may use.
func (b *builder) selectStmt(at []string, stmt string, params ...string) {
	t := strings.TrimSpace(stmt)
	first := strings.ToUpper(strings.Fields(t + " x")[0])
	if first != "SELECT" && first != "WITH" {
		b.problem(at, "bad-sql", "must be a SELECT (or WITH … SELECT) statement")
		return
	}
	code := sqlCode(t)
	if i := strings.Index(code, ";"); i >= 0 && strings.TrimSpace(code[i+1:]) != "" {
		b.problem(at, "bad-sql", "must be one statement")
	}
	for _, m := range regexp.MustCompile(`\$[A-Za-z_][A-Za-z0-9_]*|\$[0-9]+|\?`).FindAllString(code, -1) {
		ok := false
		for _, p := range params {
			ok = ok || m == p
		}
		if !ok {
			allowed := "none"
			if len(params) > 0 {
				allowed = strings.Join(params, ", ")
			}
			b.problem(at, "bad-sql", "placeholder %s is not one the engine binds (allowed: %s)", m, allowed)
		}
	}
}

// sqlCode blanks out a statement's string literals, quoted identifiers and
// comments, leaving the code the checks look at.
func sqlCode(s string) string {
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(s) && s[j] != c {
				j++
			}
			out.WriteString(strings.Repeat(" ", j-i+1))
			i = j
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			for i < len(s) && s[i] != '\n' {
				out.WriteByte(' ')
				i++
			}
		default:
			out.WriteByte(c)
		}
	}
	return out.String()
}

func (b *builder) sqlSource(at []string, src engine.SourceSpec) {
	b.needKind(append(at, "connector"), src.Connector, "sql", "a sql source")
	qat := append(append([]string{}, at...), "sql", "select")
	b.selectStmt(qat, src.SQL.Select, "$cursor", "$now")
	if !regexp.MustCompile(`(?i)\border\s+by\b`).MatchString(sqlCode(src.SQL.Select)) {
		b.problem(qat, "bad-sql", "a paged select needs ORDER BY on columns that fix the order, or pages may repeat or miss rows")
	}
	if src.Path != "" || src.Get != nil {
		b.problem(at, "one-of", "a sql source lists with sql.select: path and get do not apply")
	}
}

func (b *builder) sqlLookup(plan *engine.Plan, name string, ls engine.LookupSpec) {
	at := sel("lookups", name, "sql")
	b.needConnector(append(at, "connector"), ls.SQL.Connector)
	b.needKind(append(at, "connector"), ls.SQL.Connector, "sql", "a sql lookup")
	b.selectStmt(append(at, "select"), ls.SQL.Select)
	plan.APILookups[name] = &engine.APILookup{Name: name, Connector: ls.SQL.Connector, Table: true}
}

func (b *builder) sqlUpsert(at []string, ps engine.PipelineSpec, up *engine.Upsert) {
	u := ps.Upsert
	b.needKind(append(at, "connector"), u.Connector, "sql", "a sql upsert")
	if u.Key != "" || u.Find != nil || u.Create != nil || u.Update != nil || u.KeyFallback != "" || u.NoFind != "" {
		b.problem(at, "one-of", "a sql upsert writes INSERT … ON CONFLICT by sql.key: key, key_fallback, find, create, update and no_find do not apply")
	}
	if u.Mode != "" && u.Mode != "upsert" {
		b.problem(append(at, "mode"), "bad-value", "a sql upsert always upserts (mode %s does not apply)", u.Mode)
	}
	for col := range ps.Map {
		if !identRe.MatchString(col) {
			b.problem(append(sel(at[0], at[1], "map"), col), "bad-identifier", "%q is not a column name (letters, digits and _, not starting with a digit)", col)
		}
	}
	sq := u.SQL
	var parts []string
	for i, k := range sq.Key {
		if _, ok := ps.Map[k]; !ok {
			b.problem(append(at, "sql", "key", fmt.Sprint(i)), "unknown-column", "key column %q is not mapped: map it, or the row has no key", k)
		}
		parts = append(parts, fmt.Sprintf(".[%q]", k))
	}
	switch sq.OnLeave {
	case "flag":
		if sq.FlagColumn == "" {
			b.problem(append(at, "sql", "on_leave"), "missing-field", "on_leave flag needs flag_column")
		}
	default:
		if sq.FlagColumn != "" {
			b.problem(append(at, "sql", "flag_column"), "bad-value", "flag_column applies only to on_leave flag")
		}
	}
	src := strings.Join(parts, "")
	if len(parts) > 1 {
		src = "[" + strings.Join(parts, ", ") + "] | tojson"
	}
	if len(parts) > 0 {
		up.Key = b.jq(append(at, "sql", "key"), src)
	}
	up.Native, up.Idempotent = true, true
	up.RemoveLeft = sq.OnLeave == "delete" || sq.OnLeave == "flag"
}
