-- The ONA database's locations_lookup rows the golden cases need (by
-- district code, as the deployment looks them up). District 201 is left
-- out on purpose: case 2's place columns stay empty.
INSERT INTO locations_lookup (code, province, province_code, district, district_code) VALUES
	('107', 'Banteay Meanchey', '01', 'Serei Saophoan', '0107'),
	('1203', 'Phnom Penh', '12', 'Chamkar Mon', '1203');
