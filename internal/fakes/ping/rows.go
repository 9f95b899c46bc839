package ping

import "strconv"

// Row templates, one per retrieve shipping process. Each PING query has
// its own link-entity aliases (ping.md §4: "indiv"/"int" in SHP-2747,
// "individuals" in SHP-2358), so each template spells its own keys and
// none is derived from another. Like Dataverse, a row omits an attribute
// whose value is null: the SHP-2747 fixture has a middle name on two rows
// of three.

type row map[string]any

// setStr sets k unless v is empty, as Dataverse omits null attributes.
func (r row) setStr(k, v string) {
	if v != "" {
		r[k] = v
	}
}

// setCode sets an option-set value as an integer unless it is empty (0).
func (r row) setCode(k string, v int) {
	if v != 0 {
		r[k] = v
	}
}

// dateTime renders a date the way the detail rows carry it (the DTP and
// SHP-2358 rows have a midnight time part; the list rows do not).
func dateTime(d string) string {
	if d == "" {
		return ""
	}
	return d + "T00:00:00"
}

// entityRef renders a lookup the way the SDK serialises an EntityReference;
// the location levels arrive in this shape and are read through .Name.
func entityRef(logicalName string, l location) map[string]any {
	return map[string]any{
		"Id":            l.ID,
		"LogicalName":   logicalName,
		"Name":          l.Name,
		"KeyAttributes": []any{},
		"RowVersion":    nil,
	}
}

// pendingRow is an SHP-2747 row: the older "deliveries" shape of
// ping_retrieve_pending_referrals_response.json plus progres_lpinterventionid,
// the only key Flow 1.1 reads from it (ping.md §10).
func (s *Server) pendingRow(in *intervention) row {
	p := in.Person
	r := row{
		"progres_lpinterventionid":                      in.ID,
		"progres_intervention":                          in.ID,
		"progres_interventionname":                      in.Number,
		"progres_dtpdeliveryid":                         in.DeliveryID,
		"progres_deliverytype":                          125080004,
		"progres_deliverytypename":                      "Primero Outgoing Referral",
		"statuscode":                                    1,
		"progres_businessunit":                          in.BusinessUnit,
		"progres_businessunitname":                      s.opts.BusinessUnitName,
		"progres_lpintervention.int.progres_individual": p.ID,
	}
	r.setStr("progres_statusdate", in.StatusDate)
	r.setCode("progres_individual.indiv.progres_sex", p.Sex)
	r.setStr("progres_individual.progres_sexname", sexNames[p.Sex])
	r.setStr("progres_individual.indiv.progres_givenname", p.Given)
	r.setStr("progres_individual.indiv.progres_middlename", p.Middle)
	r.setStr("progres_individual.indiv.progres_registrationgroupid", p.GroupID)
	r.setStr("progres_individual.progres_registrationgroupidname", p.GroupName)
	r.setStr("progres_individual.indiv.progres_id", p.ProgresID)
	r.setStr("progres_lpintervention.int.progres_interventionnumber", in.Number)
	r.setStr("progres_lpintervention.int.progres_interventionstartdate", in.StartDate)
	r.setStr("progres_lpintervention.int.progres_interventiondescription", in.Description)
	r.setStr("progres_lpintervention.progres_individualname", p.ProgresID)
	return r
}

// detailRows are the SHP-2358 rows of one intervention: the query outer-joins
// languages and specific needs, so it yields max(1,L) x max(1,S) rows that
// repeat every other attribute (ping.md §4 "Joins multiply rows"). The rows
// do not carry progres_lpinterventionid; Flow 1.1 copies it from the list row.
func (s *Server) detailRows(in *intervention) []row {
	p := in.Person
	base := row{
		"progres_interventionnumber": in.Number,
		"progres_businessunit":       in.BusinessUnit,
		"progres_interventiontype2":  in.Type.ID,
		"progres_interventiontype2.interventiontype.progres_description": in.Type.Description,
	}
	base.setStr("progres_interventionstartdate", dateTime(in.StartDate))
	base.setStr("progres_interventiondescription", in.Description)
	base.setStr("progres_reasonforreferral", in.Reason)
	base.setCode("progres_primerotransferstatus", in.TransferStatus)
	base.setStr("progres_primerotransferstatusdate", in.TransferStatusDate)
	base.setStr("progres_primeroid", in.PrimeroID)
	const ind = "progres_individual.individuals."
	base.setStr(ind+"progres_id", p.ProgresID)
	base.setStr(ind+"progres_registrationgroupid", p.GroupID)
	base.setStr("progres_individual.progres_registrationgroupidname", p.GroupName)
	base.setStr(ind+"progres_givenname", p.Given)
	base.setStr(ind+"progres_middlename", p.Middle)
	base.setStr(ind+"progres_familyname", p.Family)
	base.setStr(ind+"progres_commonyusedname", p.CommonName)
	base.setStr(ind+"progres_dateofbirth", dateTime(p.DateOfBirth))
	base.setCode(ind+"progres_sex", p.Sex)
	base.setStr(ind+"progres_primaryphonenumber", p.Phone)
	for i, l := range p.Locations {
		if l.Name != "" {
			base["individuals.progres_coalocationlevel"+strconv.Itoa(i+1)] = entityRef("progres_locationlevel", l)
		}
	}
	base.setStr("systemuser.title", in.Staff.Title)
	base.setStr("systemuser.su.mobilephone", in.Staff.Mobile)
	base.setStr("systemuser.su.internalemailaddress", in.Staff.Email)

	langs := in.Languages
	if len(langs) == 0 {
		langs = []language{{}}
	}
	needs := in.Needs
	if len(needs) == 0 {
		needs = []specificNeed{{}}
	}
	out := make([]row, 0, len(langs)*len(needs))
	for _, l := range langs {
		for _, n := range needs {
			r := make(row, len(base)+6)
			for k, v := range base {
				r[k] = v
			}
			r.setStr("progres_language.progres_languagecodeidname", l.Name)
			r.setStr("progres_language.languages.progres_languagecodeid", l.ID)
			r.setStr("progres_specificneed.progres_spncategory2name", n.Category)
			r.setStr("progres_specificneed.progres_spnsubcategory2name", n.Subcategory)
			r.setStr("progres_specificneed.specificneeds.progres_spncategory2", n.CategoryID)
			r.setStr("progres_specificneed.specificneeds.progres_spnsubcategory2", n.SubcategoryID)
			out = append(out, r)
		}
	}
	return out
}

// decisionRow is an SHP-2795 row: the referral id and its status, the only
// two keys Flow 2.2 reads from the list.
func decisionRow(r *referral) row {
	return row{
		"progres_interoperabilityreferralid":     r.ID,
		"progres_interoperabilityreferralstatus": r.Status,
	}
}

// decisionDetailRow is an SHP-2796 row. The rejection attributes keep
// PING's misspellings ("interoperabilty", "rejectionomment") exactly.
func decisionDetailRow(r *referral) row {
	out := row{
		"progres_interoperabilityreferralid":     r.ID,
		"progres_interoperabilityreferralstatus": r.Status,
		"progres_interoperabilityreferralnumber": r.Number,
	}
	out.setCode("progres_reviewdecision", r.ReviewDecision)
	out.setStr("progres_offlineid", r.field("progres_offlineid"))
	out.setStr("progres_orgreferralid", r.field("progres_orgreferralid"))
	out.setStr("progres_requestedservice", r.field("progres_requestedservice"))
	out.setStr("progres_businessunit", r.field("progres_businessunit"))
	out.setStr("progres_interoperabiltyreferralrejectionreasonname", r.ReasonName)
	out.setStr("progres_interoperabilityreferralrejectionomment", r.ReasonComment)
	return out
}
