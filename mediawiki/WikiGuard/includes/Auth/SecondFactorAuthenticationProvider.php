<?php

namespace MediaWiki\Extension\WikiGuard\Auth;

use MediaWiki\Auth\AbstractSecondaryAuthenticationProvider;
use MediaWiki\Auth\AuthenticationRequest;
use MediaWiki\Auth\AuthenticationResponse;
use MediaWiki\Extension\WikiGuard\Client;
use MediaWiki\Extension\WikiGuard\Hooks\Notices;
use MediaWiki\Logger\LoggerFactory;
use MediaWiki\MediaWikiServices;
use Message;
use Psr\Log\LoggerInterface;
use User;

/**
 * The second step of a login, after the password passed: asks the accounts door which
 * factors the account has (`GET /v1/accounts/{user}/factors`) and, when one is enrolled,
 * asks for it (SecondFactorAuthenticationRequest). A six-digit code goes to `totp/verify`,
 * any other code to `recovery/verify`, a passkey assertion to `passkeys/login/finish`.
 *
 * - A wrong, replayed or locked code shows the step again with a message naming why.
 * - A group that must have a second factor, with none enrolled: the user is let in and
 *   reminded on every page of that session to set one up at Special:WikiGuardSecurity.
 *   Refusing them would lock administrators out of their own wiki the day the requirement is
 *   switched on, with no way to enrol (enrolment needs a login).
 * - The door's fail mode applies to the question "does this account have a second factor?":
 *   open lets the user in without the step (and logs it), closed refuses the login. Once the
 *   step is shown, a code is never accepted unchecked: if the door cannot check it, the step
 *   is shown again with wikiguard-unavailable-login.
 */
class SecondFactorAuthenticationProvider extends AbstractSecondaryAuthenticationProvider {
	/** Authentication session data: whose second step this is and what they can use. */
	public const SESSION_KEY = 'WikiGuard:secondFactor';

	/** Refusal reasons of the door => message keys. */
	private const REFUSALS = [
		'wrong-code' => 'wikiguard-2fa-wrong-code',
		'malformed' => 'wikiguard-2fa-wrong-code',
		'no-codes' => 'wikiguard-2fa-wrong-code',
		'replayed' => 'wikiguard-2fa-replayed',
		'locked' => 'wikiguard-2fa-locked',
		'blocked' => 'wikiguard-2fa-locked',
		'not-enrolled' => 'wikiguard-2fa-not-enrolled',
		'expired' => 'wikiguard-2fa-expired',
		'wrong-origin' => 'wikiguard-2fa-wrong-origin',
		'possible-clone' => 'wikiguard-2fa-possible-clone',
		'suspended' => 'wikiguard-2fa-possible-clone',
		'unknown-credential' => 'wikiguard-2fa-unknown-passkey',
		'no-credentials' => 'wikiguard-2fa-unknown-passkey',
	];

	/** @var Client */
	private $client;
	/** @var LoggerInterface */
	private $log;

	/**
	 * @param Client $client
	 */
	public function __construct( Client $client ) {
		$this->client = $client;
		$this->log = LoggerFactory::getInstance( 'WikiGuard' );
	}

	/**
	 * @inheritDoc
	 */
	public function getAuthenticationRequests( $action, array $options ) {
		// Nothing on the first form: the second step is a screen of its own.
		return [];
	}

	/**
	 * @inheritDoc
	 */
	public function beginSecondaryAuthentication( $user, array $reqs ) {
		try {
			return $this->begin( $user );
		} catch ( \Throwable $e ) {
			$this->log->error( 'WikiGuard: the second-factor check failed ({error})', [
				'error' => get_class( $e ) . ': ' . $e->getMessage(),
			] );
			return $this->client->failsClosed( 'accounts' )
				? AuthenticationResponse::newFail( wfMessage( 'wikiguard-unavailable-login' ) )
				: AuthenticationResponse::newAbstain();
		}
	}

	/**
	 * @param User $user
	 * @return AuthenticationResponse
	 */
	private function begin( User $user ): AuthenticationResponse {
		if ( !$this->config->get( 'WikiGuardSecondFactor' ) ) {
			return AuthenticationResponse::newAbstain();
		}
		$groups = MediaWikiServices::getInstance()->getUserGroupManager()->getUserEffectiveGroups( $user );
		$r = $this->client->call( 'accounts', 'GET',
			$this->path( $user, '/factors' ) . '?groups=' . rawurlencode( implode( ',', $groups ) ) );
		if ( !$r->ok() ) {
			if ( $this->client->failsClosed( 'accounts' ) ) {
				$this->log->warning(
					'WikiGuard: cannot tell whether {user} has a second factor ({error}); failing closed',
					[ 'user' => $user->getName(), 'error' => $r->error ]
				);
				return AuthenticationResponse::newFail( wfMessage( 'wikiguard-unavailable-login' ) );
			}
			$this->log->warning( 'WikiGuard: cannot tell whether {user} has a second factor ({error}); failing open', [
				'user' => $user->getName(), 'error' => $r->error,
			] );
			return AuthenticationResponse::newAbstain();
		}
		$kinds = array_map( 'strval', (array)( $r->body['kinds_enrolled'] ?? [] ) );
		if ( !empty( $r->body['enrolled'] ) ) {
			$state = [
				'user' => $user->getName(),
				'totp' => in_array( 'totp', $kinds, true ),
				'passkey' => in_array( 'passkey', $kinds, true ),
				'recovery' => in_array( 'recovery-codes', $kinds, true ),
			];
			$this->manager->setAuthenticationSessionData( self::SESSION_KEY, $state );
			return $this->ask( $state, null );
		}
		if ( !empty( $r->body['required'] ) ) {
			$this->log->info(
				'WikiGuard: {user} must have a second factor but has none; ' .
					'letting them in and asking them to set one up',
				[ 'user' => $user->getName() ]
			);
			$this->manager->getRequest()->getSession()->set( Notices::SESSION_ENROL, true );
		}
		return AuthenticationResponse::newAbstain();
	}

	/**
	 * @inheritDoc
	 */
	public function continueSecondaryAuthentication( $user, array $reqs ) {
		$state = $this->manager->getAuthenticationSessionData( self::SESSION_KEY );
		if ( !is_array( $state ) || ( $state['user'] ?? null ) !== $user->getName() ) {
			$state = [ 'user' => $user->getName(), 'totp' => true, 'passkey' => false, 'recovery' => true ];
		}
		try {
			return $this->verify( $user, $reqs, $state );
		} catch ( \Throwable $e ) {
			$this->log->error( 'WikiGuard: checking a second factor failed ({error})', [
				'error' => get_class( $e ) . ': ' . $e->getMessage(),
			] );
			return $this->ask( $state, wfMessage( 'wikiguard-unavailable-login' ) );
		}
	}

	/**
	 * @param User $user
	 * @param AuthenticationRequest[] $reqs
	 * @param array $state
	 * @return AuthenticationResponse
	 */
	private function verify( User $user, array $reqs, array $state ): AuthenticationResponse {
		/** @var SecondFactorAuthenticationRequest|null $req */
		$req = AuthenticationRequest::getRequestByClass( $reqs, SecondFactorAuthenticationRequest::class );
		$code = $req ? (string)$req->wikiguardcode : '';
		$assertion = $req ? (string)$req->wikiguardpasskey : '';
		if ( $code === '' && $assertion === '' ) {
			return $this->ask( $state, wfMessage( 'wikiguard-2fa-missing' ) );
		}
		$ip = $this->manager->getRequest()->getIP();
		$recovery = false;
		if ( $code !== '' ) {
			$digits = preg_replace( '/[\s-]+/', '', $code );
			if ( preg_match( '/^[0-9]{6}$/', $digits ) ) {
				$kind = 'authenticator code';
				$r = $this->client->call( 'accounts', 'POST', $this->path( $user, '/totp/verify' ), [
					'code' => $digits, 'ip' => $ip,
				] );
			} else {
				$kind = 'recovery code';
				$recovery = true;
				$r = $this->client->call( 'accounts', 'POST', $this->path( $user, '/recovery/verify' ), [
					'code' => $code, 'ip' => $ip,
				] );
			}
		} else {
			$kind = 'passkey';
			$credential = json_decode( $assertion, true );
			if ( !is_array( $credential ) ) {
				return $this->ask( $state, wfMessage( 'wikiguard-2fa-passkey-invalid' ) );
			}
			$r = $this->client->call( 'accounts', 'POST', $this->path( $user, '/passkeys/login/finish' ), [
				'credential' => $credential, 'ip' => $ip,
			] );
		}
		if ( !$r->ok() ) {
			// Never accept a code that could not be checked, whatever the fail mode.
			$this->log->warning( 'WikiGuard: the {kind} of {user} could not be checked ({error})', [
				'kind' => $kind, 'user' => $user->getName(), 'error' => $r->error,
			] );
			return $this->ask( $state, wfMessage( 'wikiguard-unavailable-login' ) );
		}
		if ( !empty( $r->body['ok'] ) ) {
			$this->manager->removeAuthenticationSessionData( self::SESSION_KEY );
			if ( $recovery ) {
				$remaining = (int)( $r->body['remaining'] ?? 0 );
				$this->log->info( 'WikiGuard: {user} signed in with a recovery code; {remaining} left', [
					'user' => $user->getName(), 'remaining' => $remaining,
				] );
				$this->manager->getRequest()->getSession()->set( Notices::SESSION_RECOVERY, $remaining );
			}
			return AuthenticationResponse::newPass();
		}
		$reason = (string)( $r->body['reason'] ?? '' );
		$this->log->info( 'WikiGuard: the {kind} of {user} was refused ({reason})', [
			'kind' => $kind, 'user' => $user->getName(), 'reason' => $reason,
		] );
		if ( !empty( $r->body['notify_owner'] ) ) {
			$this->log->warning( 'WikiGuard: {user} had the right password and repeated wrong codes; telling them', [
				'user' => $user->getName(),
			] );
			Notices::fromServices()->tell( $user, Notices::PASSWORD_KNOWN );
		}
		return $this->ask( $state, $this->refusal( $reason, $r->body ) );
	}

	/**
	 * The message for a refusal reason.
	 *
	 * @param string $reason
	 * @param array $body the door's answer
	 * @return Message
	 */
	private function refusal( string $reason, array $body ): Message {
		$key = self::REFUSALS[$reason] ?? 'wikiguard-2fa-failed';
		$msg = wfMessage( $key );
		if ( $key === 'wikiguard-2fa-locked' ) {
			$wait = (int)( $body['retry_after'] ?? 0 );
			$msg = $wait > 0
				? wfMessage( 'wikiguard-2fa-locked-for' )->params( Message::durationParam( $wait ) )
				: $msg;
		}
		return $msg;
	}

	/**
	 * The step's form, with a prompt or an error.
	 *
	 * @param array $state [ 'totp', 'passkey', 'recovery' ]
	 * @param Message|null $error
	 * @return AuthenticationResponse
	 */
	private function ask( array $state, ?Message $error ): AuthenticationResponse {
		$req = new SecondFactorAuthenticationRequest(
			!empty( $state['totp'] ), !empty( $state['passkey'] ), !empty( $state['recovery'] )
		);
		if ( $error ) {
			return AuthenticationResponse::newUI( [ $req ], $error, 'error' );
		}
		$prompt = !empty( $state['passkey'] ) ? 'wikiguard-2fa-prompt-passkey' : 'wikiguard-2fa-prompt';
		return AuthenticationResponse::newUI( [ $req ], wfMessage( $prompt ), 'warning' );
	}

	/**
	 * @param User $user
	 * @param string $rest starting with /
	 * @return string
	 */
	private function path( User $user, string $rest ): string {
		return '/v1/accounts/' . rawurlencode( $user->getName() ) . $rest;
	}

	/**
	 * @inheritDoc
	 */
	public function beginSecondaryAccountCreation( $user, $creator, array $reqs ) {
		// A new account has no second factor yet; it is set up at Special:WikiGuardSecurity.
		return AuthenticationResponse::newPass();
	}
}
