<?php
/**
 * Aliases for the special pages of the WikiGuard extension.
 *
 * @file
 */

$specialPageAliases = [];

/** English */
$specialPageAliases['en'] = [
	'WikiGuardSecurity' => [ 'WikiGuardSecurity' ],
];
