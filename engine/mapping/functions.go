package mapping

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/itchyny/gojq"
)

// jqOptions are the compiler options every program gets, in check and in
// run alike. No environ loader: `env` must not read secrets.
func jqOptions(reg *Registry) []gojq.CompilerOption {
	return []gojq.CompilerOption{
		gojq.WithVariables(varNames),
		gojq.WithFunction("__lookup", 3, 3, func(in any, args []any) any {
			name, _ := args[0].(string)
			reverse, _ := args[1].(bool)
			l, ok := reg.Get(name)
			if !ok {
				return &UnknownLookupError{Name: name}
			}
			rt := runtimeOf(args[2])
			ctx := context.Background()
			if rt != nil && rt.Ctx != nil {
				ctx = rt.Ctx
			}
			v, err := l.Get(ctx, rt, in, reverse)
			if err != nil {
				return err
			}
			return normalizeNumber(v)
		}),
		// ymd: the date part of an ISO date or time, "/" read as "-".
		gojq.WithFunction("ymd", 0, 0, func(in any, _ []any) any {
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
		}),
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
