<?php
/**
 * Services of the WikiGuard extension.
 */

use MediaWiki\Extension\WikiGuard\Checker;
use MediaWiki\Extension\WikiGuard\Client;
use MediaWiki\Extension\WikiGuard\Consequences;
use MediaWiki\Logger\LoggerFactory;
use MediaWiki\MediaWikiServices;

return [
	'WikiGuard.Client' => static function ( MediaWikiServices $services ): Client {
		$config = $services->getMainConfig();
		return new Client(
			(string)$config->get( 'WikiGuardServiceUrl' ),
			$config->get( 'WikiGuardToken' ),
			$config->get( 'WikiGuardTokenFile' ),
			(int)$config->get( 'WikiGuardTimeoutMs' ),
			(array)$config->get( 'WikiGuardFailMode' ),
			LoggerFactory::getInstance( 'WikiGuard' )
		);
	},
	'WikiGuard.Consequences' => static function ( MediaWikiServices $services ): Consequences {
		return new Consequences(
			$services->getBlockUserFactory(),
			$services->getUserGroupManager(),
			$services->getMainObjectStash(),
			LoggerFactory::getInstance( 'WikiGuard' )
		);
	},
	'WikiGuard.Checker' => static function ( MediaWikiServices $services ): Checker {
		$config = $services->getMainConfig();
		return new Checker(
			$services->get( 'WikiGuard.Client' ),
			$services->get( 'WikiGuard.Consequences' ),
			$services,
			(array)$config->get( 'WikiGuardCheckedActions' ),
			(int)$config->get( 'WikiGuardVariablesCacheSeconds' ),
			LoggerFactory::getInstance( 'WikiGuard' )
		);
	},
];
