[ "$(echo banger | tr a-z A-Z)" = BANGER ]
