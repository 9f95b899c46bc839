package engine

import (
	"regexp"
	"strings"
	"unicode"
)

// ScrubRemote keeps what a remote system's error message says about a
// request (which field, what rule) and drops what it may quote of the
// record: remote text such as `Name "Sokha Chan" (born 2014-02-01) exists`
// would otherwise be stored with the failure, logged and shown on the status
// page. Kept are words of a common error vocabulary, snake_case or dotted
// field names and punctuation; anything quoted, any token with a digit, an
// e-mail address or a URL, any word outside the vocabulary (a name) and any
// non-ASCII word becomes "…". A spec that needs more of an answer reads it
// with its own refusal program, which is the deployment's decision.
func ScrubRemote(s string) string {
	if s == "" {
		return ""
	}
	s = quoted.ReplaceAllString(s, "$1 … $2")
	s = mailOrURL.ReplaceAllString(s, " … ")
	var b strings.Builder
	masked, space := false, false
	emit := func(t string) {
		if space && b.Len() > 0 {
			b.WriteString(" ")
		}
		b.WriteString(t)
		space = false
	}
	prev := ""
	for _, tok := range tokenize(s) {
		after := prev
		prev = tok
		switch {
		case isSpace(tok):
			space = true
		case after == "/" && isIndex(tok):
			// A JSON pointer's array index (/services_section/0/unique_id).
			emit(tok)
			masked = false
		case tok == "…" || (isWord(tok) && !keepWord(tok)):
			if masked {
				// One "…" stands for a run of dropped words.
				space = false
				continue
			}
			emit("…")
			masked = true
		default:
			emit(tok)
			masked = false
		}
	}
	return b.String()
}

var (
	// A single quote opens a quotation only after a non-letter and closes
	// it before one, so the apostrophe of "can't" is not a quote.
	quoted    = regexp.MustCompile(`"[^"]*"|(^|[^\p{L}])'[^']*'([^\p{L}]|$)|“[^”]*”|«[^»]*»|‘[^’]*’|\x60[^\x60]*\x60`)
	mailOrURL = regexp.MustCompile(`\S+@\S+|[a-zA-Z][a-zA-Z0-9+.-]*://\S+`)
)

// tokenize splits s into words (letters, digits, '_', and a '.' or '-'
// inside a word) and single other characters.
func tokenize(s string) []string {
	var out []string
	rs := []rune(s)
	for i := 0; i < len(rs); {
		if strings.HasPrefix(string(rs[i:]), "…") {
			out = append(out, "…")
			i++
			continue
		}
		if wordRune(rs[i]) {
			j := i + 1
			for j < len(rs) && (wordRune(rs[j]) || ((rs[j] == '.' || rs[j] == '-' || rs[j] == '\'') && j+1 < len(rs) && wordRune(rs[j+1]))) {
				j++
			}
			out = append(out, string(rs[i:j]))
			i = j
			continue
		}
		out = append(out, string(rs[i]))
		i++
	}
	return out
}

func wordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || unicode.IsMark(r)
}

func isWord(tok string) bool {
	for _, r := range tok {
		return wordRune(r)
	}
	return false
}

// isIndex is a short run of digits.
func isIndex(tok string) bool {
	if len(tok) > 3 {
		return false
	}
	for _, r := range tok {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func isSpace(tok string) bool { return strings.TrimSpace(tok) == "" }

// keepWord: a vocabulary word in any case, or a field name (snake_case or
// dotted, lower-case ASCII letters only).
func keepWord(w string) bool {
	for _, r := range w {
		if r > unicode.MaxASCII || unicode.IsDigit(r) {
			return false
		}
	}
	lw := strings.ToLower(w)
	if errorWords[lw] {
		return true
	}
	if w == lw && (strings.Contains(w, "_") || strings.Contains(w, ".")) {
		return true
	}
	return false
}

// errorWords is the vocabulary of error messages: what is wrong, with
// what, and the grammar around it. A name that happens to be one of these
// words says nothing on its own.
var errorWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`
		a an the this that these those it its is are was were be been being has have had
		isn't aren't wasn't doesn't don't didn't won't couldn't born
		down up gateway proxy upstream find child children due subscription quota
		content body header headers query page pages next previous
		do does did not no nor or and but if then than of to in on at by for from with without
		as into onto per via can can't cannot could should must may might will would shall
		only also already again yet still more less too very all any each every some none one
		which who whom whose what when where why how there here
		record records field fields value values key keys id ids uuid attribute attributes
		parameter parameters param params property properties column columns row rows item items
		entry entries object objects array arrays string strings number numbers integer boolean
		date time datetime timestamp format type types length size range limit limits maximum minimum
		character characters byte bytes digit digits
		invalid valid required missing blank empty null nil unknown unexpected unsupported
		duplicate duplicated exists exist existing found taken already unique conflict conflicts
		error errors failed failure fail fails wrong bad incorrect malformed mismatch mismatched
		denied forbidden unauthorized unauthorised refused rejected permission permissions access
		allowed disallowed authorized authorised authentication authenticated token tokens expired
		expires session login logged credentials password user users account accounts locked
		request requests response server internal service unavailable timeout timed busy
		too many rate limited retry later try again please contact administrator
		create created update updated delete deleted save saved change changed
		include includes including contain contains containing match matches matching
		less greater equal between after before must_be
		case cases client clients referral referrals service services organization organisation
		organizations organisations agency agencies status statuses transition transitions
		workflow module modules form forms location locations gender sex age birth
		name names given family first last middle email phone address
		resource resources endpoint path route method version api json xml html http https url
		csrf jwt ok
		verify verified validation validate validated constraint constraints violates violated
		reference references referenced belong belongs belonging associated association
		selected option options list lists choice choices accept accepted acceptance
		select supported support supports
		`) {
		m[w] = true
	}
	return m
}()
