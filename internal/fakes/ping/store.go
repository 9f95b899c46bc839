package ping

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
)

// intervention is one proGres LP intervention with everything the
// shipping processes read or write about it. seq orders rows and keys the
// paging cookies; it never changes, so a page walk stays stable while the
// queue shrinks under it.
type intervention struct {
	seq          int
	ID           string // progres_lpinterventionid (= progres_intervention)
	DeliveryID   string // progres_dtpdeliveryid of the older row shape
	Number       string // progres_interventionnumber
	BusinessUnit string
	StartDate    string // YYYY-MM-DD
	StatusDate   string // YYYY-MM-DD
	Description  string // may hold HTML
	Reason       string // may hold HTML
	Type         interventionType
	Person       individual
	Languages    []language
	Needs        []specificNeed
	Staff        staff

	TransferStatus     int    // 0 = empty
	TransferStatusDate string // YYYY-MM-DD
	PrimeroID          string
	CaseWorker         string
	CommentField       string   // progres_comments_displayfield, overwritten on write
	Notes              []string // attachment comments, in arrival order
}

type individual struct {
	ID          string // GUID of the individual record
	ProgresID   string // progres_id, e.g. 900-100000001
	GroupID     string // registration group GUID
	GroupName   string // registration group number
	Given       string
	Middle      string
	Family      string
	CommonName  string
	DateOfBirth string // YYYY-MM-DD, "" when proGres has none
	Sex         int    // 0 = missing
	Phone       string
	Locations   [6]location // coalocationlevel1..6; empty Name = absent
}

type location struct{ ID, Name string }

type language struct{ ID, Name string }

type staff struct{ Title, Mobile, Email string }

// referral is one interoperability referral. Fields holds what SHP-2731
// sent (or what the seed invented in the same shape); the rest is proGres's
// own state.
type referral struct {
	seq            int
	ID             string // progres_interoperabilityreferralid
	Number         string // progres_interoperabilityreferralnumber
	Status         int
	ReviewDecision int // 0 = none
	ReasonName     string
	ReasonComment  string
	Fields         map[string]*string
	CommentField   string   // progres_comments, overwritten on write
	Notes          []string // attachment comments, in arrival order
}

func (r *referral) field(name string) string {
	if v := r.Fields[name]; v != nil {
		return *v
	}
	return ""
}

// idSource hands out lower-case v4-shaped GUIDs from a seeded stream, so a
// test that replays the same requests sees the same ids.
type idSource struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func newIDSource(seed, stream uint64) *idSource {
	return &idSource{rng: rand.New(rand.NewPCG(seed, stream))}
}

func (g *idSource) next() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return guidFrom(g.rng)
}

func guidFrom(r *rand.Rand) string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// normGUID returns the lower-case form of s and whether s is a GUID.
// proGres compares GUIDs without regard to case.
func normGUID(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if !guidRE.MatchString(s) {
		return "", false
	}
	return strings.ToLower(s), true
}
