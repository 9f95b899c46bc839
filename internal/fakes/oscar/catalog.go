package oscar

import (
	"bytes"
	"crypto/sha1"
	_ "embed"
	"encoding/json"
	"fmt"
)

// servicesCatalogJSON is OSCaR's service sheet (origin in
// testdata/README.md). It is embedded because the fake also runs outside
// the test tree (engine demo), from any working folder.
//
//go:embed testdata/services_catalog.json
var servicesCatalogJSON []byte

// service is one row of OSCaR's services table: a catalogue entry, not a
// child's instance of it. Every client enrolled in a service carries the
// same uuid.
type service struct {
	UUID     string
	Name     string
	Category string
}

// catalog is the parsed catalogue in file order.
type catalog struct {
	rows   []service
	byName map[string][]service // a name can sit in two categories
}

func loadCatalog() *catalog {
	c, err := parseCatalog(servicesCatalogJSON)
	if err != nil {
		panic("oscar: embedded services catalogue: " + err.Error())
	}
	return c
}

// parseCatalog reads {"categories":{cat:[names]}} keeping file order, which
// a map would lose; the order decides which uuid a listing shows first.
func parseCatalog(b []byte) (*catalog, error) {
	var raw struct {
		Categories json.RawMessage `json:"categories"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw.Categories))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("categories: want an object")
	}
	c := &catalog{byName: map[string][]service{}}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		cat, _ := t.(string)
		var names []string
		if err := dec.Decode(&names); err != nil {
			return nil, fmt.Errorf("category %q: %w", cat, err)
		}
		for _, n := range names {
			s := service{UUID: catalogUUID(cat, n), Name: n, Category: cat}
			c.rows = append(c.rows, s)
			c.byName[n] = append(c.byName[n], s)
		}
	}
	return c, nil
}

// match is Service.where(name: names): every catalogue row whose name is
// one of names, in catalogue order, each row once. Unknown names are dropped
// without a word, as the real query does; the referral then fails with
// services "can't be blank" only if nothing matched.
func (c *catalog) match(names []string) []service {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []service
	for _, s := range c.rows {
		if want[s.Name] {
			out = append(out, s)
		}
	}
	return out
}

// catalogUUID derives a stable uuid for a catalogue row. The real uuids are
// per installation (the fixtures show three different ones for "Emergency
// foster care"), so any stable value is as faithful as another.
func catalogUUID(category, name string) string {
	h := sha1.Sum([]byte("oscar-service\x00" + category + "\x00" + name))
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}
