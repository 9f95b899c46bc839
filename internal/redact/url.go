package redact

import (
	"net/url"
	"strings"
)

// secretNames are query parameter and header names whose values are
// credentials, compared after lower-casing and turning '-' into '_'.
var secretNames = map[string]bool{
	"token": true, "access_token": true, "refresh_token": true, "id_token": true,
	"password": true, "passwd": true, "pwd": true,
	"key": true, "api_key": true, "apikey": true, "subscription_key": true,
	"secret": true, "client_secret": true,
	"sig": true, "signature": true,
	"authorization": true, "auth": true, "cookie": true, "set_cookie": true,
}

// secretSuffixes catch the many spellings of the same idea
// (ocp_apim_subscription_key, x_api_key, session_token, app_secret).
var secretSuffixes = []string{"_token", "_key", "_secret", "_password", "_sig", "_signature"}

// IsSecretName reports whether a query parameter or header called name
// carries a credential. camelCase names count word by word (hisToken is
// his_token).
func IsSecretName(name string) bool {
	n := strings.ReplaceAll(strings.ToLower(snake(name)), "-", "_")
	if secretNames[n] {
		return true
	}
	for _, s := range secretSuffixes {
		if strings.HasSuffix(n, s) {
			return true
		}
	}
	return false
}

// SafeURL formats u without userinfo and with the value of every
// secret-looking query parameter masked. u is not modified.
func SafeURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User = nil
	if c.RawQuery != "" {
		q, err := url.ParseQuery(c.RawQuery)
		if err != nil {
			// A query we cannot parse cannot be checked either.
			c.RawQuery = "query=" + url.QueryEscape(Mask)
		} else {
			for name, vs := range q {
				if IsSecretName(name) {
					for i := range vs {
						vs[i] = Mask
					}
				}
			}
			c.RawQuery = q.Encode()
		}
	}
	return c.String()
}

// snake puts '_' where a lower-case letter or digit meets an upper-case
// one: apiKey → api_Key, hisTOKEN → his_TOKEN.
func snake(name string) string {
	var b strings.Builder
	for i, r := range name {
		if i > 0 && r >= 'A' && r <= 'Z' {
			if p := name[i-1]; (p >= 'a' && p <= 'z') || (p >= '0' && p <= '9') {
				b.WriteByte('_')
			}
		}
		b.WriteRune(r)
	}
	return b.String()
}
