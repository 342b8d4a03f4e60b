<?php

namespace MediaWiki\Extension\WikiGuard\Auth;

use MediaWiki\Extension\WikiGuard\Client;
use MediaWiki\Logger\LoggerFactory;
use MediaWiki\MediaWikiServices;
use MediaWiki\User\UserIdentity;
use Status;

/**
 * The password policy check WikiGuardPasswordCheck: asks the accounts door
 * (`POST /v1/passwords/check`) about a password known only by its SHA-1 and its length in
 * characters. The password itself never leaves the wiki.
 *
 * Each refusal reason (too-short, too-long, breached, equals-username) is a non-fatal error,
 * which is MediaWiki's policy semantics for "not acceptable as a new password": account
 * creation and password changes need a good status, so they are refused; a login with an
 * existing password that fails the check still works (MediaWiki checks the policy before
 * every login, and a fatal status there would lock the owner out), and with the policy's
 * `suggestChangeOnLogin` flag the user is asked to choose a better one.
 *
 * $wgWikiGuardPasswordCheck = false turns the check off. When the door does not answer, its
 * fail mode applies: open accepts the password (and logs it), closed refuses it with
 * wikiguard-unavailable-password.
 */
class PasswordCheck {
	/** The door's reason codes => message keys. */
	private const MESSAGES = [
		'too-short' => 'wikiguard-password-too-short',
		'too-long' => 'wikiguard-password-too-long',
		'breached' => 'wikiguard-password-breached',
		'equals-username' => 'wikiguard-password-equals-username',
	];

	/**
	 * @param mixed $policyVal true to check
	 * @param UserIdentity $user whose password it is (or will be)
	 * @param string $password
	 * @return Status
	 */
	public static function checkPolicy( $policyVal, UserIdentity $user, $password ) {
		$status = Status::newGood();
		if ( !$policyVal ) {
			return $status;
		}
		$logger = LoggerFactory::getInstance( 'WikiGuard' );
		try {
			$services = MediaWikiServices::getInstance();
			if ( !$services->getMainConfig()->get( 'WikiGuardPasswordCheck' ) ) {
				return $status;
			}
			/** @var Client $client */
			$client = $services->getService( 'WikiGuard.Client' );
			$password = (string)$password;
			$groups = array_values( $services->getUserGroupManager()->getUserEffectiveGroups( $user ) );
			$r = $client->call( 'accounts', 'POST', '/v1/passwords/check', [
				'sha1' => sha1( $password ),
				'length' => mb_strlen( $password, 'UTF-8' ),
				'username' => $user->getName(),
				'groups' => $groups,
			] );
			if ( !$r->ok() ) {
				if ( $client->failsClosed( 'accounts' ) ) {
					$logger->warning(
						'WikiGuard: the accounts door did not check a password ({error}); failing closed',
						[ 'error' => $r->error ]
					);
					$status->error( 'wikiguard-unavailable-password' );
				} else {
					$logger->warning( 'WikiGuard: the accounts door did not check a password ({error}); failing open', [
						'error' => $r->error,
					] );
				}
				return $status;
			}
			foreach ( (array)( $r->body['reasons'] ?? [] ) as $reason ) {
				$code = is_array( $reason ) ? (string)( $reason['code'] ?? '' ) : '';
				$status->error( self::MESSAGES[$code] ?? 'wikiguard-password-refused' );
			}
			if ( empty( $r->body['ok'] ) && $status->isGood() ) {
				$status->error( 'wikiguard-password-refused' );
			}
		} catch ( \Throwable $e ) {
			$logger->error( 'WikiGuard: the password check failed ({error})', [ 'error' => get_class( $e ) ] );
		}
		return $status;
	}
}
