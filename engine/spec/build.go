package spec

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"cuelang.org/go/cue/token"
	"github.com/robfig/cron/v3"

	"casesync/engine"
	"casesync/engine/mapping"
)

// builder turns a decoded, schema-valid spec into a compiled Plan, adding a
// positioned problem for everything it cannot compile or resolve.
type builder struct {
	l       *loader
	spec    *engine.DeploymentSpec
	reg     *mapping.Registry
	secrets map[string]bool
	// brokenDefs names the functions of shared jq blocks that failed.
	brokenDefs map[string]bool
	// pipelineAt is where each compiled pipeline (or branch) is written.
	pipelineAt map[string][]string
}

func (b *builder) problem(sel []string, code, format string, args ...any) {
	b.l.add(b.l.posOf(sel...), joinPath(sel), code, format, args...)
}

func sel(parts ...string) []string { return parts }

// joinPath renders selectors as a CUE path: labels that are not
// identifiers are quoted ("X-Api-Key"), as CUE's own errors print them.
func joinPath(sel []string) string {
	parts := make([]string, len(sel))
	for i, s := range sel {
		parts[i] = s
		if !isIdentLabel(s) {
			if _, err := parseIndex(s); err != nil {
				parts[i] = strconv.Quote(s)
			}
		}
	}
	return strings.Join(parts, ".")
}

func isIdentLabel(s string) bool {
	if s == "" || ('0' <= s[0] && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isIdent(s[i]) && s[i] != '$' && s[i] != '#' {
			return false
		}
	}
	return true
}

func (b *builder) build() *engine.Plan {
	s := b.spec
	plan := &engine.Plan{
		Spec:       *s,
		Vars:       s.Vars,
		Secrets:    s.Secrets,
		Connectors: map[string]*engine.Connector{},
		APILookups: map[string]*engine.APILookup{},
		Pipelines:  map[string]*engine.Pipeline{},
	}
	if plan.Vars == nil {
		plan.Vars = map[string]any{}
	}
	b.secrets = map[string]bool{}
	b.brokenDefs = map[string]bool{}
	for _, name := range s.Secrets {
		b.secrets[name] = true
	}
	b.reg = mapping.NewRegistry()
	b.reg.SetLimits(mapping.Limits{Timeout: b.duration(sel("limits", "eval_timeout"), s.Limits.EvalTimeout), MaxBytes: s.Limits.EvalMaxBytes})
	plan.Lookups = b.reg

	// Lookups first: programs check the lookup names they call.
	for _, name := range sortedKeys(s.Lookups) {
		b.lookup(plan, name, s.Lookups[name])
	}
	// Shared jq definitions next: every later program may call them.
	for _, name := range defsOrder(s.JQDefs) {
		b.jqDefs(name, s.JQDefs[name])
	}
	for _, name := range sortedKeys(s.Connectors) {
		if c := b.connector(name, s.Connectors[name]); c != nil {
			plan.Connectors[name] = c
		}
	}
	// API lookups need connectors and compiled requests.
	for _, name := range sortedKeys(s.Lookups) {
		ls := s.Lookups[name]
		if ls.SQL != nil {
			b.sqlLookup(plan, name, ls)
		}
		if ls.API == nil {
			continue
		}
		at := sel("lookups", name, "api")
		b.needConnector(append(at, "connector"), ls.API.Connector)
		b.needKind(append(at, "connector"), ls.API.Connector, "rest", "an api lookup")
		req := b.request(append(at, "request"), ls.API.Request)
		plan.APILookups[name] = &engine.APILookup{Name: name, Connector: ls.API.Connector, Request: req,
			Value: b.jq(append(at, "value"), ls.API.Value)}
	}
	b.pipelineAt = map[string][]string{}
	for _, name := range sortedKeys(s.Pipelines) {
		if ps := s.Pipelines[name]; len(ps.Branches) > 0 {
			b.branches(plan, name, ps)
			continue
		}
		at := sel("pipelines", name)
		b.pipelineAt[name] = at
		plan.Pipelines[name] = b.pipeline(name, at, s.Pipelines[name], nil, engine.PipelineSpec{})
		plan.Order = append(plan.Order, name)
	}
	slices.Sort(plan.Order)
	b.chaining(s)
	b.sensitivity(plan)
	return plan
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (b *builder) text(at []string, t engine.Text) {
	if t.Secret != "" && !b.secrets[t.Secret] && !b.l.broken["secrets"] {
		b.problem(append(at, "secret"), "undeclared-secret", "secret %s is not declared in secrets", t.Secret)
	}
}

// Header and body field names whose value is a credential: writing one out
// instead of {secret: NAME} puts the secret in the spec.
var (
	secretHeaders = map[string]bool{"authorization": true, "proxy-authorization": true, "x-api-key": true, "api-key": true, "apikey": true}
	secretKeys    = map[string]bool{"password": true, "passwd": true, "secret": true, "client_secret": true, "api_key": true, "apikey": true, "access_token": true, "refresh_token": true}
)

// header checks one header: a declared secret, and no credential inline.
func (b *builder) header(at []string, name string, t engine.Text) {
	at = append(append([]string{}, at...), name)
	b.text(at, t)
	if t.Value != "" && secretHeaders[strings.ToLower(name)] {
		b.problem(at, "inline-secret", "header %s is written in the spec", name)
	}
}

func (b *builder) duration(at []string, s string) time.Duration {
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		b.problem(at, "bad-duration", "%q is not a duration", s)
	}
	return d
}

func (b *builder) needConnector(at []string, name string) {
	if _, ok := b.spec.Connectors[name]; !ok && !b.l.isBroken("connectors", name) {
		b.problem(at, "unknown-connector", "no connector named %q", name)
	}
}

func (b *builder) connector(name string, cs engine.ConnectorSpec) *engine.Connector {
	at := sel("connectors", name)
	c := &engine.Connector{Name: name, Spec: cs, Kind: "rest"}
	switch {
	case cs.SQL != nil && cs.BaseURL != "":
		b.problem(at, "one-of", "connector sets base_url and sql: choose one")
		return c
	case cs.SQL != nil:
		c.Kind = "sql"
		b.text(append(at, "sql", "dsn"), cs.SQL.DSN)
		if cs.SQL.DSN.Secret == "" {
			b.problem(append(at, "sql", "dsn"), "inline-secret", "the DSN holds the database password: write {secret: NAME}")
		}
		return c
	case cs.BaseURL == "":
		b.problem(append(at, "base_url"), "missing-field", "a connector needs base_url (an HTTP API) or sql (a database)")
	}
	c.Timeout = b.duration(append(at, "timeout"), cs.Timeout)
	c.Backoff = b.duration(append(at, "retry", "backoff"), cs.Retry.Backoff)
	c.MaxBackoff = b.duration(append(at, "retry", "max_backoff"), cs.Retry.MaxBackoff)
	for h, t := range cs.Headers {
		b.header(append(at, "headers"), h, t)
	}
	c.Auth = b.auth(append(at, "auth"), cs.Auth)
	if cs.Pagination != nil {
		c.Pagination = b.pagination(append(at, "pagination"), *cs.Pagination)
	}
	if shown, host, ok := plainHTTP(cs.BaseURL); ok && !loopbackHost(host) {
		b.warn(append(at, "base_url"), "insecure-url", "%s is plain http to another machine: credentials and case data cross the network unencrypted; use https://", shown)
	}
	if t := cs.TLS; t != nil {
		tat := append(at, "tls")
		b.text(append(tat, "client_cert"), t.ClientCert)
		b.text(append(tat, "client_key"), t.ClientKey)
		if t.ClientCert.IsZero() != t.ClientKey.IsZero() {
			b.problem(tat, "missing-field", "mutual TLS needs both client_cert and client_key")
		}
		if t.CAFile != "" {
			c.CAPEM = b.caFile(append(tat, "ca_file"), t.CAFile)
		}
	}
	return c
}

// caFile reads a CA bundle from the deployment folder and checks that it
// holds at least one certificate.
func (b *builder) caFile(at []string, file string) []byte {
	path := file
	if !filepath.IsAbs(path) {
		path = filepath.Join(b.l.dir, path)
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		b.problem(at, "bad-value", "cannot read the CA bundle %s", file)
		return nil
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		b.problem(at, "bad-value", "%s holds no PEM certificate", file)
		return nil
	}
	return pem
}

// plainHTTP splits an http:// URL into the URL as shown (a password in it
// masked) and its host name; ok is false for any other scheme. The engine
// does not import net/url (see deps_test.go), and a base_url needs no more.
func plainHTTP(raw string) (shown, host string, ok bool) {
	rest, ok := strings.CutPrefix(raw, "http://")
	if !ok {
		return "", "", false
	}
	authority, path, _ := strings.Cut(rest, "/")
	if i := strings.Index(path, "?"); i >= 0 {
		path = path[:i]
	}
	shown = raw
	if user, hostport, has := strings.Cut(authority, "@"); has {
		if name, _, hasPass := strings.Cut(user, ":"); hasPass {
			shown = "http://" + name + ":xxxxx@" + hostport
			if path != "" {
				shown += "/" + path
			}
		}
		authority = hostport
	}
	host = authority
	if h, _, err := net.SplitHostPort(authority); err == nil {
		host = h
	}
	return shown, strings.Trim(host, "[]"), true
}

// loopbackHost reports whether a URL's host is this machine.
func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// warn records a warning: reported by engine check, never fatal.
func (b *builder) warn(sel []string, code, format string, args ...any) {
	n := len(b.l.problems)
	b.problem(sel, code, format, args...)
	b.l.warnings = append(b.l.warnings, b.l.problems[n:]...)
	b.l.problems = b.l.problems[:n]
}

func (b *builder) auth(at []string, a engine.AuthSpec) engine.Auth {
	out := engine.Auth{Spec: a, Kind: "none"}
	var kinds []string
	if a.None != nil {
		kinds = append(kinds, "none")
	}
	if a.Basic != nil {
		kinds = append(kinds, "basic")
		b.text(append(at, "basic", "username"), a.Basic.Username)
		b.text(append(at, "basic", "password"), a.Basic.Password)
	}
	if a.Header != nil {
		kinds = append(kinds, "header")
		b.text(append(at, "header", "value"), a.Header.Value)
	}
	if t := a.TokenLogin; t != nil {
		kinds = append(kinds, "token_login")
		tat := append(at, "token_login")
		if t.URL == "" && t.Path == "" {
			b.problem(tat, "missing-field", "token_login needs url or path")
		}
		b.bodySecrets(append(tat, "body"), t.Body)
		for k, v := range t.Form {
			fat := append(append([]string{}, tat...), "form", k)
			b.text(fat, v)
			if v.Value != "" && secretKeys[strings.ToLower(k)] {
				b.problem(fat, "inline-secret", "form field %s is written in the spec", k)
			}
		}
		if t.Token != "" {
			out.Token = b.jq(append(tat, "token"), t.Token)
		} else if len(t.SendBackHeaders) == 0 {
			b.problem(tat, "missing-field", "token_login needs token (jq) or send_back_headers")
		}
		if t.ExpiresIn != "" {
			out.ExpiresIn = b.jq(append(tat, "expires_in"), t.ExpiresIn)
		}
		out.TTL = b.duration(append(tat, "ttl"), t.TTL)
	}
	if o := a.OAuth2; o != nil {
		kinds = append(kinds, "oauth2")
		b.text(append(at, "oauth2", "client_id"), o.ClientID)
		b.text(append(at, "oauth2", "client_secret"), o.ClientSecret)
	}
	switch len(kinds) {
	case 0:
	case 1:
		out.Kind = kinds[0]
	default:
		b.problem(at, "one-of", "auth sets %s: choose one", strings.Join(kinds, " and "))
	}
	return out
}

// constSecrets refuses a secret reference inside a const: a const is sent
// as written, so {secret: NAME} there would leave as that literal object.
func (b *builder) constSecrets(at []string, v any) {
	switch x := v.(type) {
	case map[string]any:
		if name, ok := x["secret"].(string); ok && len(x) == 1 {
			b.problem(at, "bad-value", "a const is sent as written, so {secret: %q} would be sent literally; write the field as {secret: %q} instead of inside const", name, name)
			return
		}
		for _, k := range sortedKeys(x) {
			b.constSecrets(append(append([]string{}, at...), k), x[k])
		}
	case []any:
		for i, e := range x {
			b.constSecrets(append(append([]string{}, at...), fmt.Sprint(i)), e)
		}
	}
}

// bodySecrets checks secret references nested in a login body.
func (b *builder) bodySecrets(at []string, body map[string]any) {
	for k, v := range body {
		switch x := v.(type) {
		case map[string]any:
			if name, ok := x["secret"].(string); ok && len(x) == 1 {
				b.text(append(append([]string{}, at...), k), engine.Text{Secret: name})
				continue
			}
			b.bodySecrets(append(append([]string{}, at...), k), x)
		case string:
			if x != "" && secretKeys[strings.ToLower(k)] {
				b.problem(append(append([]string{}, at...), k), "inline-secret", "body field %s is written in the spec", k)
			}
		}
	}
}

func (b *builder) pagination(at []string, p engine.PaginationSpec) *engine.Pagination {
	out := &engine.Pagination{Spec: p}
	var kinds []string
	if p.Page != nil {
		kinds = append(kinds, "page")
		if p.Page.Total != "" {
			out.Total = b.jq(append(at, "page", "total"), p.Page.Total)
		}
	}
	if p.Offset != nil {
		kinds = append(kinds, "offset")
		if p.Offset.Total != "" {
			out.Total = b.jq(append(at, "offset", "total"), p.Offset.Total)
		}
	}
	if p.NextLink != nil {
		kinds = append(kinds, "next_link")
		if p.NextLink.JQ != "" {
			out.Next = b.jq(append(at, "next_link", "jq"), p.NextLink.JQ)
		} else if !p.NextLink.LinkHeader {
			b.problem(append(at, "next_link"), "missing-field", "next_link needs jq or link_header: true")
		}
	}
	if p.BodyCursor != nil {
		kinds = append(kinds, "body_cursor")
		out.Next = b.jq(append(at, "body_cursor", "next"), p.BodyCursor.Next)
	}
	if p.None != nil {
		kinds = append(kinds, "none")
	}
	switch len(kinds) {
	case 0:
		out.Kind = "none"
	case 1:
		out.Kind = kinds[0]
	default:
		b.problem(at, "one-of", "pagination sets %s: choose one", strings.Join(kinds, " and "))
	}
	return out
}

// jq compiles a program; a problem points inside the spec string.
func (b *builder) jq(at []string, src string) *mapping.JQ {
	j, err := mapping.CompileJQ(src, b.reg)
	if err != nil {
		b.programProblem(at, "bad-jq", src, err)
		return nil
	}
	b.checkVars(at, 0, jqVarsRefs(src))
	return j
}

// jqDefs adds a block of shared jq definitions. A block with a mistake
// is reported once, where it is written (a lib's block in the lib); the
// programs that call its definitions are not reported again.
func (b *builder) jqDefs(name, src string) {
	at := sel("jq_defs", name)
	if err := b.reg.AddDefs(src); err != nil {
		b.programProblem(at, "bad-jq", src, err)
		for _, m := range defName.FindAllStringSubmatch(src, -1) {
			b.brokenDefs[m[1]] = true
		}
		return
	}
	b.checkVars(at, 0, jqVarsRefs(src))
}

// brokenDefBlock reports whether CUE refused a block of shared jq
// definitions: what it defines is unknown, so a call to an undefined
// function may be a call into it.
func (b *builder) brokenDefBlock() bool {
	for k := range b.l.broken {
		if strings.HasPrefix(k, "jq_defs.") {
			return true
		}
	}
	return false
}

// defsOrder orders blocks of jq definitions so that a block comes after
// the blocks whose definitions it calls (jq resolves a name only to a
// definition before it), else by name; blocks calling each other in a
// cycle keep name order, and the call that cannot resolve is reported.
func defsOrder(blocks map[string]string) []string {
	owner := map[string]string{}
	for _, name := range sortedKeys(blocks) {
		for _, m := range defName.FindAllStringSubmatch(blocks[name], -1) {
			if _, dup := owner[m[1]]; !dup {
				owner[m[1]] = name
			}
		}
	}
	needs := map[string]map[string]bool{}
	for name, src := range blocks {
		needs[name] = map[string]bool{}
		for _, m := range jqIdent.FindAllStringSubmatch(src, -1) {
			if o, ok := owner[m[1]]; ok && o != name {
				needs[name][o] = true
			}
		}
	}
	var out []string
	placed := map[string]bool{}
	for len(out) < len(blocks) {
		progress := false
		for _, name := range sortedKeys(blocks) {
			if placed[name] {
				continue
			}
			ready := true
			for dep := range needs[name] {
				ready = ready && placed[dep]
			}
			if ready {
				out, placed[name], progress = append(out, name), true, true
			}
		}
		if !progress {
			for _, name := range sortedKeys(blocks) {
				if !placed[name] {
					out, placed[name] = append(out, name), true
				}
			}
		}
	}
	return out
}

// jqIdent is a name a jq text may call: not a field (.name), a variable
// ($name) or part of a longer word.
var jqIdent = regexp.MustCompile(`(?:^|[^.$A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_]*)`)

var defName = regexp.MustCompile(`\bdef\s+([A-Za-z_][A-Za-z0-9_]*)`)

// answerCheck compiles the ok and refusal programs of a write or after
// step at `at`; either may be empty.
func (b *builder) answerCheck(at []string, ok, refusal string) engine.AnswerCheck {
	var c engine.AnswerCheck
	if ok != "" {
		c.OK = b.jq(append(at[:len(at):len(at)], "ok"), ok)
	}
	if refusal != "" {
		c.Refusal = b.jq(append(at[:len(at):len(at)], "refusal"), refusal)
	}
	return c
}

func (b *builder) expr(at []string, src string, kind mapping.ExprKind) *mapping.Expr {
	e, err := mapping.CompileExpr(src, kind, b.reg)
	if err != nil {
		b.programProblem(at, "bad-expr", src, err)
		return nil
	}
	b.checkVars(at, 0, exprVarsRefs(src))
	return e
}

func (b *builder) template(at []string, src string) *mapping.Template {
	t, err := mapping.CompileTemplate(src, b.reg)
	if err != nil {
		b.programProblem(at, "bad-template", src, err)
		return nil
	}
	holes, offs := t.Holes()
	for i, h := range holes {
		b.checkVars(at, offs[i], jqVarsRefs(h))
	}
	return t
}

// programProblem positions a jq/expr/template error inside the CUE string
// that holds the program: at the place inside the program the error is
// about, mapped back through the string literal to a file line and column.
func (b *builder) programProblem(at []string, code, src string, err error) {
	path := joinPath(at)
	var ul *mapping.UnknownLookupError
	if errors.As(err, &ul) {
		if b.l.isBroken("lookups", ul.Name) {
			return // the lookup itself is reported
		}
		code = "unknown-lookup"
	}
	msg := err.Error()
	if m := undefinedFunc.FindStringSubmatch(msg); m != nil && (b.brokenDefs[m[1]] || b.l.broken["jq_defs"] || b.brokenDefBlock()) {
		return // its shared definition is reported, or may be in a block CUE refused
	}
	var se *mapping.SyntaxError
	if errors.As(err, &se) && se.Line > 0 {
		msg = se.Msg
	}
	var te *mapping.TemplateError
	if errors.As(err, &te) && errors.As(te.Err, &se) && se.Line > 0 {
		msg = "{" + se.Lang + "}: " + se.Msg
	}
	if code == "bad-expr" {
		msg = exprWords(msg)
	}
	// gojq names the end of the program as an empty token.
	msg = strings.ReplaceAll(msg, `unexpected token ""`, "the program ends too early (an unclosed bracket or a dangling |?)")
	lit := b.l.posOf(at...)
	off, ok := errOffset(src, err)
	if !lit.IsValid() || !ok {
		b.l.add(lit, path, code, "%s", msg)
		return
	}
	file, line, col := b.l.programPos(at, lit, src, off)
	b.l.problems = append(b.l.problems, Problem{File: b.l.rel(file), Line: line, Col: col, Path: path, Code: code, Msg: msg, Hint: Codes[code]})
}

var (
	exprToken  = regexp.MustCompile(`\b(?:Identifier|Number|String|Operator|Bracket)\("((?:[^"\\]|\\.)*)"\)`)
	exprGoType = strings.NewReplacer("[]interface {}", "list", "map[string]interface {}", "object", "interface {}", "any value")
	exprNumber = regexp.MustCompile(`\b(?:float64|int)\b`)
)

// exprWords rewrites expr's internal names in a message into the spec
// author's: a token Operator("=") is "=", Go's []interface {} a list.
func exprWords(msg string) string {
	msg = exprToken.ReplaceAllString(msg, `"$1"`)
	if strings.Contains(msg, `unexpected token "="`) {
		msg += " (compare with ==)"
	}
	return exprNumber.ReplaceAllString(exprGoType.Replace(msg), "number")
}

func (b *builder) request(at []string, r engine.RequestSpec) engine.Request {
	out := engine.Request{Method: r.Method, Headers: r.Headers, Pos: posString(b.l, b.l.posOf(at...))}
	if out.Method == "" {
		out.Method = "GET"
	}
	out.Path = b.template(append(at, "path"), r.Path)
	for _, k := range sortedKeys(r.Query) {
		qat := append(at, "query", k)
		if t := r.Query[k]; t.Secret != "" {
			b.text(qat, t)
			out.Query = append(out.Query, engine.QueryParam{Name: k, Secret: t.Secret})
			continue
		}
		out.Query = append(out.Query, engine.QueryParam{Name: k, Value: b.template(qat, r.Query[k].Value)})
	}
	for h, t := range r.Headers {
		b.header(append(at, "headers"), h, t)
	}
	if r.Body != nil {
		out.Body = b.value(append(at, "body"), *r.Body)
	}
	if r.Pagination != nil {
		out.Pagination = b.pagination(append(at, "pagination"), *r.Pagination)
	}
	if r.Records != "" {
		out.Records = b.jq(append(at, "records"), r.Records)
	}
	return out
}

func posString(l *loader, p token.Pos) string {
	if !p.IsValid() {
		return ""
	}
	return fmt.Sprintf("%s:%d:%d", l.rel(p.Filename()), p.Line(), p.Column())
}

// value compiles one mapped value.
func (b *builder) value(at []string, v engine.ValueSpec) *mapping.Value {
	out := &mapping.Value{OmitEmpty: v.OmitEmpty}
	var kinds []string
	if v.JQ != nil {
		kinds = append(kinds, "jq")
		out.JQ = b.jq(append(at, "jq"), *v.JQ)
	}
	if v.Expr != nil {
		kinds = append(kinds, "expr")
		out.Expr = b.expr(append(at, "expr"), *v.Expr, mapping.ExprAny)
	}
	if v.Const != nil {
		kinds = append(kinds, "const")
		out.Const, out.HasConst = fixAny(v.Const), true
	}
	if v.Fields != nil {
		kinds = append(kinds, "fields")
		out.Fields = b.fields(append(at, "fields"), v.Fields)
	}
	if v.Each != nil {
		kinds = append(kinds, "each")
		out.Each = b.jq(append(at, "each"), *v.Each)
		if v.Map == nil {
			b.problem(at, "missing-field", "each needs map: the fields of every element")
		}
		out.Map = b.fields(append(at, "map"), v.Map)
	} else if v.Map != nil {
		b.problem(append(at, "map"), "one-of", "map goes with each")
	}
	if v.Secret != "" {
		kinds = append(kinds, "secret")
		b.text(at, engine.Text{Secret: v.Secret})
		out.Secret = v.Secret
	}
	if v.Const != nil {
		b.constSecrets(append(at, "const"), v.Const)
	}
	if v.Default != nil {
		out.Default, out.HasDefault = fixAny(v.Default), true
	}
	switch len(kinds) {
	case 1:
	case 0:
		b.problem(at, "one-of", "a value needs one of jq, expr, const, secret, fields or each")
	default:
		b.problem(at, "one-of", "a value sets %s: choose one", strings.Join(kinds, " and "))
	}
	return out
}

func (b *builder) fields(at []string, m map[string]engine.ValueSpec) []mapping.Field {
	out := make([]mapping.Field, 0, len(m))
	for _, name := range sortedKeys(m) {
		fat := append(append([]string{}, at...), name)
		out = append(out, mapping.Field{Name: name, Pos: posString(b.l, b.l.posOf(fat...)), Value: b.value(fat, m[name])})
	}
	return out
}

var cursorLayouts = map[string]string{
	"rfc3339":   time.RFC3339,
	"rfc3339ms": "2006-01-02T15:04:05.000Z07:00",
	"datetime":  "2006-01-02 15:04:05",
	"date":      "2006-01-02",
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseCron reads a trigger.cron expression: five fields or a descriptor
// such as @hourly. It is the one parser both check and the daemon use.
func ParseCron(expr string) (cron.Schedule, error) { return cronParser.Parse(expr) }

// branches compiles each branch of pipeline group as a pipeline of its
// own name that reads group's source.
func (b *builder) branches(plan *engine.Plan, group string, gs engine.PipelineSpec) {
	gat := sel("pipelines", group)
	if gs.Trigger.Inbox != nil {
		b.problem(append(gat, "trigger", "inbox"), "bad-value", "a pipeline with branches lists its source for them all; an inbox feeds one pipeline, so give it a pipeline of its own")
	}
	for field, set := range map[string]bool{"map": gs.Map != nil, "upsert": gs.Upsert.Connector != "" || gs.Upsert.Key != "",
		"each": gs.Each != nil, "after": len(gs.After) > 0} {
		if set {
			b.problem(append(gat, field), "bad-value", "%s belongs to each branch: a pipeline with branches has only what they share (trigger, source, filter, enrich)", field)
		}
	}
	var names []string
	for _, name := range sortedKeys(gs.Branches) {
		bat := sel("pipelines", group, "branches", name)
		if _, ok := b.spec.Pipelines[name]; ok {
			b.problem(bat, "duplicate-pipeline", "branch %s has the name of pipeline %s: a branch is a pipeline of that name (its outcomes, links and runs), so the two would share them", name, name)
			continue
		}
		if other, ok := plan.Pipelines[name]; ok {
			b.problem(bat, "duplicate-pipeline", "branch %s is also a branch of %s: a branch is a pipeline of that name (its outcomes, links and runs), so the two would share them", name, other.Group)
			continue
		}
		b.pipelineAt[name] = bat
		p := b.pipeline(name, gat, gs, bat, gs.Branches[name])
		p.Group = group
		plan.Pipelines[name] = p
		plan.Order = append(plan.Order, name)
		names = append(names, name)
	}
	if plan.Groups == nil {
		plan.Groups = map[string][]string{}
	}
	plan.Groups[group] = names
}

// pipeline compiles pipeline name: its trigger and source from gs (at
// gat), and its stages from bs (at bat) when it is a branch of gs, else
// from gs, whose filters and enrich steps a branch's own follow.
func (b *builder) pipeline(name string, gat []string, gs engine.PipelineSpec, bat []string, bs engine.PipelineSpec) *engine.Pipeline {
	at, ps := gat, gs
	if bat != nil {
		at, ps = bat, branchSpec(gs, bs)
	}
	p := &engine.Pipeline{Name: name, Spec: ps, Pos: posString(b.l, b.l.posOf(at...)), MaxAttempts: ps.MaxAttempts, Concurrency: ps.Concurrency}

	if ps.Trigger.Cron != "" {
		if _, err := cronParser.Parse(ps.Trigger.Cron); err != nil {
			b.problem(append(at, "trigger", "cron"), "bad-cron", "%q: %v", ps.Trigger.Cron, err)
		}
	}
	if in := ps.Trigger.Inbox; in != nil {
		p.Inbox = b.inbox(append(at, "trigger", "inbox"), in)
	}

	b.source(gat, gs, p)

	b.filters(gat, gs, p)
	b.enrichSteps(gat, gs, p)
	if bat != nil {
		b.filters(bat, bs, p)
		b.enrichSteps(bat, bs, p)
	}
	if ps.Each != nil {
		p.Each = &engine.Each{JQ: b.jq(append(at, "each", "jq"), ps.Each.JQ), Key: b.jq(append(at, "each", "key"), ps.Each.Key)}
	}
	p.Map = &mapping.Mapping{Fields: b.fields(append(at, "map"), ps.Map), Limits: b.reg.Limits()}

	if !b.upsert(at, ps, p) {
		return p
	}

	b.afterSteps(at, ps, p)
	return p
}

// branchSpec is the spec a branch runs by: the pipeline's trigger and
// source, its filters and enrich steps then the branch's, and the
// branch's own stages; max_attempts and concurrency are the branch's when
// it sets them.
func branchSpec(gs, bs engine.PipelineSpec) engine.PipelineSpec {
	ps := gs
	ps.Branches = nil
	if bs.Description != "" {
		ps.Description = bs.Description
	}
	ps.Filter = append(slices.Clip(gs.Filter), bs.Filter...)
	ps.Enrich = append(slices.Clip(gs.Enrich), bs.Enrich...)
	ps.Each, ps.Map, ps.Upsert, ps.After = bs.Each, bs.Map, bs.Upsert, bs.After
	if bs.MaxAttempts > 0 {
		ps.MaxAttempts = bs.MaxAttempts
	}
	if bs.Concurrency > 0 {
		ps.Concurrency = bs.Concurrency
	}
	return ps
}

// filters compiles the filters ps declares at at into p.
func (b *builder) filters(at []string, ps engine.PipelineSpec, p *engine.Pipeline) {
	for i, f := range ps.Filter {
		fat := append(append([]string{}, at...), "filter", fmt.Sprint(i))
		p.Filters = append(p.Filters, engine.Filter{Expr: b.expr(append(fat, "expr"), f.Expr, mapping.ExprBool), Reason: f.Reason, Pos: posString(b.l, b.l.posOf(fat...))})
	}
}

// inbox compiles a pipeline's trigger.inbox at iat.
func (b *builder) inbox(iat []string, in *engine.InboxSpec) *engine.Inbox {
	b.text(append(iat, "secret"), in.Secret)
	ib := &engine.Inbox{Path: in.Path, Secret: in.Secret, Header: in.Header, MaxBytes: int64(in.MaxBytes),
		Key: b.jq(append(iat, "key"), in.Key), Pos: posString(b.l, b.l.posOf(iat...))}
	if h := in.HMAC; h != nil {
		b.text(append(iat, "hmac", "secret"), h.Secret)
		ib.HMAC = &engine.InboxHMAC{Secret: h.Secret, SignatureHeader: h.SignatureHeader, TimestampHeader: h.TimestampHeader,
			Prefix: h.Prefix, Base64: h.Encoding == "base64", Window: b.duration(append(iat, "hmac", "window"), h.Window)}
	}
	if in.Secret == (engine.Text{}) && in.HMAC == nil {
		b.problem(iat, "missing-field", "an inbox needs secret (a shared secret) or hmac (signed deliveries), or both")
	}
	if in.Fetch != nil {
		r := b.request(append(iat, "fetch"), *in.Fetch)
		ib.Fetch = &r
	}
	if in.Event != "" {
		ib.Event = b.jq(append(iat, "event"), in.Event)
	}
	if in.Dedupe.ID != "" {
		ib.DedupeID = b.jq(append(iat, "dedupe", "id"), in.Dedupe.ID)
	}
	if in.Dedupe.Window != "" {
		ib.DedupeWindow = b.duration(append(iat, "dedupe", "window"), in.Dedupe.Window)
		ib.DedupeSet = true
	}
	return ib
}

// source compiles a pipeline's source into p.
func (b *builder) source(at []string, ps engine.PipelineSpec, p *engine.Pipeline) {
	src := ps.Source
	sat := append(at, "source")
	b.needConnector(append(sat, "connector"), src.Connector)
	p.Source = engine.PipelineSource{Connector: src.Connector, Key: b.jq(append(sat, "key"), src.Key)}
	if src.SQL != nil {
		b.sqlSource(sat, src)
	} else if src.Connector != "" && b.kindOf(src.Connector) == "sql" {
		b.problem(sat, "missing-field", "a source on sql connector %q needs sql.select", src.Connector)
	} else {
		if src.Path == "" && src.Listing {
			b.problem(append(sat, "path"), "missing-field", "an HTTP source needs path (a sql connector's source needs sql; an inbox-only one, listing: false)")
		}
		p.Source.Request = b.request(sat, src.RequestSpec)
	}
	p.Source.NoListing = !src.Listing
	if p.Source.NoListing && ps.Trigger.Inbox == nil {
		b.problem(append(sat, "listing"), "bad-value", "a source without a listing needs trigger.inbox: nothing else would bring it records")
	}
	if p.Source.NoListing && len(ps.Trigger.After) > 0 {
		b.problem(append(at, "trigger", "after"), "bad-value", "the source has no listing (source.listing: false), so a chained run would have nothing to read")
	}
	if p.Source.NoListing && ps.Trigger.Cron != "" {
		b.problem(append(at, "trigger", "cron"), "bad-value", "the source has no listing (source.listing: false), so a cron run would have nothing to read")
	}
	if src.Updated != "" {
		p.Source.Updated = b.jq(append(sat, "updated"), src.Updated)
	}
	if src.Get != nil {
		r := b.request(append(sat, "get"), *src.Get)
		p.Source.Get = &r
	}
	if c := src.Cursor; c != nil {
		cat := append(sat, "cursor")
		cur := &engine.Cursor{Next: c.Next, DayStart: c.DayStart, Layout: cursorLayouts[c.Format]}
		if c.Field != "" {
			cur.Field = b.jq(append(cat, "field"), c.Field)
		} else if c.Next == "max_seen" {
			b.problem(cat, "missing-field", "cursor.next max_seen needs cursor.field")
		}
		cur.Overlap = b.duration(append(cat, "overlap"), c.Overlap)
		t, err := parseTime(c.Initial)
		if err != nil {
			b.problem(append(cat, "initial"), "bad-time", "%q is not a time", c.Initial)
		}
		cur.Initial = t
		p.Source.Cursor = cur
	}
}

// enrichSteps compiles a pipeline's filters and enrich steps into p.
func (b *builder) enrichSteps(at []string, ps engine.PipelineSpec, p *engine.Pipeline) {
	for i, e := range ps.Enrich {
		eat := append(append([]string{}, at...), "enrich", fmt.Sprint(i))
		b.needConnector(append(eat, "connector"), e.Connector)
		b.needKind(append(eat, "connector"), e.Connector, "rest", "an enrich request")
		en := engine.Enrich{Name: e.Name, Connector: e.Connector, Request: b.request(append(eat, "request"), e.Request),
			As: e.As, AllPages: e.AllPages, Cache: e.Cache, OnError: e.OnError, Pos: posString(b.l, b.l.posOf(eat...))}
		if en.As == "" {
			en.As = e.Name
		}
		if e.When != "" {
			en.When = b.expr(append(eat, "when"), e.When, mapping.ExprBool)
		}
		en.Classify = b.classify(append(eat, "classify"), e.Classify)
		for j, pk := range e.Pick {
			pat := append(append([]string{}, eat...), "pick", fmt.Sprint(j))
			en.Pick = append(en.Pick, engine.Pick{By: b.jq(append(pat, "by"), pk.By), Values: b.jq(append(pat, "values"), pk.Values)})
		}
		if len(e.Pick) > 0 && !e.Cache {
			b.problem(append(eat, "pick"), "bad-value", "pick narrows a cached answer: it needs cache: true (without it every record fetches the whole list again)")
		}
		p.Enrich = append(p.Enrich, en)
	}
}

// upsert compiles a pipeline's upsert into p; false when nothing after it
// applies (a sql target has no after-steps).
func (b *builder) upsert(at []string, ps engine.PipelineSpec, p *engine.Pipeline) bool {
	u := ps.Upsert
	uat := append(at, "upsert")
	b.needConnector(append(uat, "connector"), u.Connector)
	up := engine.Upsert{Connector: u.Connector, Mode: u.Mode,
		Idempotent: u.Idempotent, Unchanged: u.Unchanged, Pos: posString(b.l, b.l.posOf(uat...))}
	if u.SQL != nil {
		b.sqlUpsert(uat, ps, &up)
		p.Upsert = up
		if len(ps.After) > 0 {
			b.problem(append(at, "after"), "sql-after", "a sql target writes a page in one transaction, after its records are decided: after-steps, which follow each write's answer, cannot run")
		}
		return false
	}
	if b.kindOf(u.Connector) == "sql" {
		b.problem(append(uat, "sql"), "missing-field", "an upsert into sql connector %q needs sql (table and key)", u.Connector)
	}
	if u.Key == "" {
		b.problem(append(uat, "key"), "missing-field", "upsert needs key (a jq program yielding the business key), or sql")
	} else {
		up.Key = b.jq(append(uat, "key"), u.Key)
	}
	if u.KeyFallback != "" {
		up.KeyFallback = b.jq(append(uat, "key_fallback"), u.KeyFallback)
	}
	if u.Find != nil {
		r := b.request(append(uat, "find"), u.Find.RequestSpec)
		up.Find = &r
		up.FindID = b.jq(append(uat, "find", "id"), u.Find.ID)
	}
	if u.Create != nil {
		r := b.request(append(uat, "create"), u.Create.RequestSpec)
		up.Create = &r
		if u.Create.ID != "" {
			up.CreateID = b.jq(append(uat, "create", "id"), u.Create.ID)
		}
		if u.Create.Transaction != "" {
			up.CreateTxn = b.jq(append(uat, "create", "transaction"), u.Create.Transaction)
		}
		up.CreateCheck = b.answerCheck(append(uat, "create"), u.Create.OK, u.Create.Refusal)
	}
	if u.Update != nil {
		r := b.request(append(uat, "update"), u.Update.RequestSpec)
		up.Update = &r
		if u.Update.Transaction != "" {
			up.UpdateTxn = b.jq(append(uat, "update", "transaction"), u.Update.Transaction)
		}
		up.UpdateCheck = b.answerCheck(append(uat, "update"), u.Update.OK, u.Update.Refusal)
	}
	if u.Link != nil {
		up.LinkSystem = u.Link.System
	}
	up.Classify = b.classify(append(uat, "classify"), u.Classify)
	switch {
	case u.Create == nil && u.Update == nil:
		b.problem(uat, "no-write", "upsert declares neither create nor update")
	case u.Mode == "create_only" && u.Create == nil, u.Mode == "upsert" && u.Create == nil && u.Find == nil:
		b.problem(uat, "no-write", "mode %s needs upsert.create", u.Mode)
	case u.Mode == "update_only" && u.Update == nil:
		b.problem(uat, "no-write", "mode update_only needs upsert.update")
	}
	if u.Create != nil && !u.Idempotent && u.Find == nil && u.NoFind == "" {
		b.problem(append(uat, "create"), "no-find", "create is not idempotent and no find is declared: a retry after a crash could duplicate")
	}
	if (u.Update != nil || u.Mode == "update_only") && u.Find == nil && !u.Idempotent && u.NoFind == "" {
		b.problem(uat, "no-find", "update needs upsert.find to locate the target")
	}
	p.Upsert = up
	return true
}

// afterSteps compiles a pipeline's after-steps into p.
func (b *builder) afterSteps(at []string, ps engine.PipelineSpec, p *engine.Pipeline) {
	for i, a := range ps.After {
		aat := append(append([]string{}, at...), "after", fmt.Sprint(i))
		b.needConnector(append(aat, "connector"), a.Connector)
		b.needKind(append(aat, "connector"), a.Connector, "rest", "an after-step")
		af := engine.After{Name: a.Name, Connector: a.Connector, Request: b.request(append(aat, "request"), a.Request), OnError: a.OnError, Pos: posString(b.l, b.l.posOf(aat...))}
		if a.When != "" {
			af.When = b.expr(append(aat, "when"), a.When, mapping.ExprBool)
		}
		if a.Transaction != "" {
			af.Transaction = b.jq(append(aat, "transaction"), a.Transaction)
		}
		af.Check = b.answerCheck(aat, a.OK, a.Refusal)
		af.On = set(a.On)
		if len(af.On) == 0 {
			af.On = map[string]bool{"written": true}
		}
		if a.Poll != nil && (af.On["skipped"] || af.On["failed"] || af.On["unchanged"]) {
			b.problem(append(aat, "on"), "bad-value", "a polled step follows a write; it cannot run on %s", strings.Join(a.On, ", "))
		}
		if pl := a.Poll; pl != nil {
			pat := append(aat, "poll")
			po := &engine.Poll{Request: b.request(append(pat, "request"), pl.Request), Status: b.jq(append(pat, "status"), pl.Status),
				Done: set(pl.Done), Failed: set(pl.Failed), Interval: b.duration(append(pat, "interval"), pl.Interval), Timeout: b.duration(append(pat, "timeout"), pl.Timeout)}
			af.Poll = po
		}
		p.After = append(p.After, af)
	}
}

// classify compiles a list of classification rules.
func (b *builder) classify(at []string, rules []engine.ClassifySpec) []engine.Classify {
	var out []engine.Classify
	for i, r := range rules {
		rat := append(append([]string{}, at...), fmt.Sprint(i))
		c := engine.Classify{Status: r.Status, Reason: r.Reason, Pos: posString(b.l, b.l.posOf(rat...))}
		switch r.Class {
		case "skip":
			c.Skip = true
		default:
			c.Class = engine.Class(r.Class)
		}
		if r.Body != "" {
			c.Body = b.jq(append(rat, "body"), r.Body)
		}
		out = append(out, c)
	}
	return out
}

func set(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("not a time")
}

// chaining checks trigger.after names and that chains have no cycle. A
// name may be a pipeline, a branch, or a pipeline with branches (after
// its run); the chain runs between pipelines as written, so a branch
// stands for the pipeline it is written in.
func (b *builder) chaining(s *engine.DeploymentSpec) {
	written := map[string]string{} // every name after may use → its pipeline
	for name, ps := range s.Pipelines {
		written[name] = name
		for br := range ps.Branches {
			if _, ok := written[br]; !ok {
				written[br] = name
			}
		}
	}
	inboxes := map[string]string{}
	for _, name := range sortedKeys(s.Pipelines) {
		t := s.Pipelines[name].Trigger
		for i, dep := range t.After {
			if _, ok := written[dep]; !ok && !b.l.isBroken("pipelines", dep) {
				b.problem(sel("pipelines", name, "trigger", "after", fmt.Sprint(i)), "unknown-pipeline", "no pipeline or branch named %q", dep)
			}
		}
		if t.Inbox != nil {
			if other, ok := inboxes[t.Inbox.Path]; ok {
				b.problem(sel("pipelines", name, "trigger", "inbox", "path"), "duplicate-inbox", "inbox path %s is also used by %s", t.Inbox.Path, other)
			}
			inboxes[t.Inbox.Path] = name
		}
	}
	// Depth-first search for a cycle; report it once, at its first member.
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var visit func(n string) bool
	visit = func(n string) bool {
		color[n] = grey
		stack = append(stack, n)
		for _, name := range s.Pipelines[n].Trigger.After {
			dep, ok := written[name]
			if !ok {
				continue
			}
			switch color[dep] {
			case grey:
				i := indexOf(stack, dep)
				cycle := append(append([]string{}, stack[i:]...), dep)
				b.problem(sel("pipelines", dep, "trigger", "after"), "chain-cycle", "pipelines run after each other in a cycle: %s", strings.Join(cycle, " → "))
				return true
			case white:
				if visit(dep) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return false
	}
	for _, name := range sortedKeys(s.Pipelines) {
		if color[name] == white && visit(name) {
			return
		}
	}
}

func indexOf(xs []string, x string) int {
	for i, y := range xs {
		if y == x {
			return i
		}
	}
	return 0
}
