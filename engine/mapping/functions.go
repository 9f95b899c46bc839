package mapping

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"
	_ "time/tzdata" // local_to_utc's IANA zones on machines without zoneinfo

	"github.com/itchyny/gojq"
)

// jqOptions are the compiler options every program gets, in check and in
// run alike. No environ loader: `env` must not read secrets.
func jqOptions(reg *Registry) []gojq.CompilerOption {
	opts := []gojq.CompilerOption{
		gojq.WithVariables(varNames),
		gojq.WithFunction("__lookup", 3, 3, func(in any, args []any) any {
			name, _ := args[0].(string)
			reverse, _ := args[1].(bool)
			return reg.lookupValue(in, name, reverse, runtimeOf(args[2]))
		}),
		gojq.WithFunction("ymd", 0, 0, func(in any, _ []any) any { return ymd(in) }),
		// age($at): whole years from a YYYY-MM-DD date to the time $at.
		gojq.WithFunction("age", 1, 1, func(in any, args []any) any {
			s, _ := in.(string)
			at, _ := args[0].(string)
			if len(s) < 10 {
				return nil
			}
			dob, err := time.Parse("2006-01-02", s[:10])
			if err != nil {
				return nil
			}
			now, err := time.Parse(time.RFC3339, at)
			if err != nil {
				return fmt.Errorf("age: $at is not an RFC 3339 time")
			}
			years := now.Year() - dob.Year()
			if now.Month() < dob.Month() || now.Month() == dob.Month() && now.Day() < dob.Day() {
				years--
			}
			if years < 0 {
				return nil
			}
			return years
		}),
		// blank: true for null, "" and empty arrays and objects.
		gojq.WithFunction("blank", 0, 0, func(in any, _ []any) any {
			return isBlank(in)
		}),
	}
	return append(opts, jqRecordFunctions()...)
}

// lookupValue is what lookup (rlookup when reverse) gives for in: the
// value, or the error (a miss, an unknown lookup) as gojq takes it.
func (reg *Registry) lookupValue(in any, name string, reverse bool, rt *Runtime) any {
	l, ok := reg.Get(name)
	if !ok {
		return &UnknownLookupError{Name: name}
	}
	ctx := context.Background()
	if rt != nil && rt.Ctx != nil {
		ctx = rt.Ctx
	}
	v, err := l.Get(ctx, rt, in, reverse)
	if err != nil {
		return err
	}
	return normalizeNumber(v)
}

// ymd is the date part of an ISO date or time, "/" read as "-".
func ymd(in any) any {
	s, ok := in.(string)
	if !ok || s == "" {
		return nil
	}
	s = strings.ReplaceAll(s, "/", "-")
	if len(s) < 10 {
		return fmt.Errorf("not a date")
	}
	if _, err := time.Parse("2006-01-02", s[:10]); err != nil {
		return fmt.Errorf("not a date")
	}
	return s[:10]
}

// jqRecordFunctions are the helpers that judge or annotate a record:
// skip, fail, local_to_utc, note and uuid5.
func jqRecordFunctions() []gojq.CompilerOption {
	return []gojq.CompilerOption{
		// skip($reason): skip the record (or fanned-out item) being mapped,
		// reported with the reason code $reason, as a filter would. It is
		// for decisions that need enriched data, which filters run before.
		gojq.WithFunction("skip", 1, 1, func(_ any, args []any) any {
			reason, _ := args[0].(string)
			if !reasonCode.MatchString(reason) {
				return fmt.Errorf("skip: reason must be a code like no_consent")
			}
			return &SkipError{Reason: reason}
		}),
		// fail($reason): fail the record (or fanned-out item) with the
		// reason code $reason, as a lookup miss with on_miss "fail" does:
		// for a value that is there but unusable, where sending a guess
		// would be worse than sending nothing.
		gojq.WithFunction("fail", 1, 1, func(_ any, args []any) any {
			reason, _ := args[0].(string)
			if !reasonCode.MatchString(reason) {
				return fmt.Errorf("fail: reason must be a code like location_code_invalid")
			}
			return &FailError{Reason: reason}
		}),
		// local_to_utc($zone): a local date-time written without an offset
		// ("2024-03-11 00:20:00", "2024-03-11T00:20", a bare date is
		// midnight) read in $zone — a fixed offset such as "+07:00" or an
		// IANA zone such as "Asia/Bangkok" — as ISO 8601 UTC
		// ("2024-03-10T17:20:00Z"). null and "" stay null.
		gojq.WithFunction("local_to_utc", 1, 1, func(in any, args []any) any {
			s, ok := in.(string)
			if in == nil || ok && strings.TrimSpace(s) == "" {
				return nil
			}
			if !ok {
				return fmt.Errorf("local_to_utc: input must be a string")
			}
			zone, _ := args[0].(string)
			loc, err := zoneOf(zone)
			if err != nil {
				return err
			}
			t, err := parseLocal(strings.TrimSpace(s), loc)
			if err != nil {
				return err
			}
			return t.UTC().Format(time.RFC3339)
		}),
		// note($code): attach the field-level note $code to the item being
		// mapped and yield the input unchanged: for a value left out or
		// changed on purpose (a date of birth that is no date), which the
		// record's outcome, dry-run and the run's counts then report.
		gojq.WithFunction("__note", 2, 2, func(in any, args []any) any {
			code, _ := args[0].(string)
			if !reasonCode.MatchString(code) {
				return fmt.Errorf("note: the code must be like date_of_birth_unreadable")
			}
			if n, ok := args[1].(*Notes); ok {
				n.Add(code)
			}
			return in
		}),
		// uuid5($namespace): the RFC 4122 version-5 (SHA-1) UUID of the
		// input string in the namespace UUID $namespace, lower-case: a
		// stable id built from other ids, e.g. for subform rows.
		gojq.WithFunction("uuid5", 1, 1, func(in any, args []any) any {
			name, ok := in.(string)
			if !ok {
				return fmt.Errorf("uuid5: input must be a string")
			}
			ns, _ := args[0].(string)
			id, err := uuid5(ns, name)
			if err != nil {
				return err
			}
			return id
		}),
	}
}

var fixedOffset = regexp.MustCompile(`^([+-])(\d{2}):?(\d{2})$`)

// zoneOf reads a fixed offset ("+07:00", "-0330", "Z", "UTC") or an IANA
// zone name. The IANA database is compiled into the binary (time/tzdata),
// so a machine without zoneinfo converts the same way.
func zoneOf(zone string) (*time.Location, error) {
	switch zone {
	case "Z", "UTC":
		return time.UTC, nil
	}
	if m := fixedOffset.FindStringSubmatch(zone); m != nil {
		h, m2 := int(m[2][0]-'0')*10+int(m[2][1]-'0'), int(m[3][0]-'0')*10+int(m[3][1]-'0')
		if h > 14 || m2 > 59 {
			return nil, fmt.Errorf("local_to_utc: offset %q out of range", zone)
		}
		secs := (h*60 + m2) * 60
		if m[1] == "-" {
			secs = -secs
		}
		return time.FixedZone(zone, secs), nil
	}
	if zone == "" || zone == "Local" {
		return nil, fmt.Errorf("local_to_utc: name the zone (an offset such as \"+07:00\" or an IANA name such as \"Asia/Bangkok\"); the machine's own zone is never assumed")
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, fmt.Errorf("local_to_utc: unknown zone %q", zone)
	}
	return loc, nil
}

var localLayouts = []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02"}

func parseLocal(s string, loc *time.Location) (time.Time, error) {
	for _, l := range localLayouts {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("local_to_utc: not a local date-time (want YYYY-MM-DD[ HH:MM[:SS]])")
}

var reasonCode = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// FailError asks the runner to fail the record with a reason code (jq
// fail($reason)); the message names the code only, never the value.
type FailError struct{ Reason string }

func (e *FailError) Error() string { return "the mapping refused the record: " + e.Reason }

// uuid5 is RFC 4122 §4.3 with SHA-1: the namespace's 16 bytes, then the
// name, hashed; version 5 and the RFC variant set.
func uuid5(namespace, name string) (string, error) {
	ns, err := hex.DecodeString(strings.ReplaceAll(namespace, "-", ""))
	if len(namespace) != 36 || err != nil || len(ns) != 16 {
		return "", fmt.Errorf("uuid5: namespace must be a UUID")
	}
	h := sha1.New()
	h.Write(ns)
	h.Write([]byte(name))
	sum := h.Sum(nil)
	sum[6] = sum[6]&0x0f | 0x50
	sum[8] = sum[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16]), nil
}

func isBlank(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return strings.TrimSpace(x) == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// normalizeNumber turns table values into gojq's number types.
func normalizeNumber(v any) any {
	switch x := v.(type) {
	case int64:
		return int(x)
	case int32:
		return int(x)
	case float32:
		return float64(x)
	}
	return v
}
