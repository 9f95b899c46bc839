package mapping

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
)

func decodeJSON(s string) (any, error) {
	var v any
	err := json.Unmarshal([]byte(s), &v)
	return v, err
}

// BenchmarkMapping_Apply maps a Primero-shaped record through a dozen jq
// fields, a lookup and a nested array; one op is one record.
func BenchmarkMapping_Apply(b *testing.B) {
	reg := registry(b)
	fields := []Field{}
	for i, src := range []string{".case_id", ".case_id_display", ".name_first", ".name_last", ".sex", ".date_of_birth | ymd",
		`.risk_level // "no_action"`, ".owned_by", `.location_current[0:2] | lookup("province_owner")`, `.owned_by_phone // "000000000"`} {
		fields = append(fields, Field{Name: fmt.Sprintf("f%d", i), Value: &Value{JQ: MustCompile(b, src, reg)}})
	}
	fields = append(fields, Field{Name: "services", Value: &Value{Each: MustCompile(b, `[.services_section[] | select(.service_response_type == "referral_to_oscar")]`, reg),
		Map: []Field{{Name: "uuid", Value: &Value{JQ: MustCompile(b, ".unique_id", reg)}}, {Name: "name", Value: &Value{JQ: MustCompile(b, `.service_subtype[0] | lookup("svc")`, reg)}}}}})
	m := &Mapping{Fields: fields}
	rec, _ := decodeJSON(`{"case_id":"5f6130b0","case_id_display":"4d3b877","name_first":"Ana","name_last":"Bel","sex":"female","date_of_birth":"2014-02-03",
	  "risk_level":"high","owned_by":"mgrpnh","location_current":"120611","services_section":[{"unique_id":"s1","service_response_type":"referral_to_oscar","service_subtype":["a"]},{"unique_id":"s2","service_response_type":"other"}]}`)
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := m.Apply(ctx, rec, nil); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}
