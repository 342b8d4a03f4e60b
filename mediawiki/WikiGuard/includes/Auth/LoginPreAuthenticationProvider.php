<?php

namespace MediaWiki\Extension\WikiGuard\Auth;

use ExtensionRegistry;
use MediaWiki\Auth\AbstractPreAuthenticationProvider;
use MediaWiki\Auth\AuthenticationRequest;
use MediaWiki\Auth\AuthenticationResponse;
use MediaWiki\Extension\ConfirmEdit\Auth\CaptchaAuthenticationRequest;
use MediaWiki\Extension\ConfirmEdit\Hooks as ConfirmEditHooks;
use MediaWiki\Extension\WikiGuard\Client;
use MediaWiki\Extension\WikiGuard\Hooks\Notices;
use MediaWiki\Extension\WikiGuard\Response;
use MediaWiki\Logger\LoggerFactory;
use MediaWiki\User\UserNameUtils;
use Message;
use Psr\Log\LoggerInterface;
use StatusValue;
use UnexpectedValueException;

/**
 * Login throttling and new-device notices through the accounts door.
 *
 * Before a password is checked, `POST /v1/login/attempt` decides:
 * - `allow`: the password is checked.
 * - `throttle`: refused with wikiguard-login-throttled, naming the wait. The password is not
 *   checked, and the refused attempt is not reported as a failure (it would only lengthen
 *   the block of whoever is behind that network, which may be the owner's colleagues).
 * - `require-challenge` (the account is tried from many networks): when ConfirmEdit is
 *   loaded, its CAPTCHA must be solved in the same request. The first attempt is refused with
 *   wikiguard-login-challenge and ConfirmEdit's per-session flag is set, so the next login form
 *   (and `meta=authmanagerinfo` for API clients) carries a CAPTCHA; a solved CAPTCHA lets the
 *   password be checked. Without ConfirmEdit the attempt proceeds and the decision is logged:
 *   the accounts door's rule is that an owner is never locked out, and a refusal nobody can
 *   satisfy would be a lock.
 *
 * After the login, `POST /v1/login/result` reports whether it succeeded (only for attempts
 * the door was asked about). On success it also gets the long-lived device cookie
 * (wikiguardDevice, HttpOnly) and whether to tell the owner of a sign-in from a new browser
 * and network (Notices: e-mail and an on-wiki notice).
 *
 * When the door does not answer, its fail mode applies: open lets the attempt proceed (and
 * logs it); closed refuses it with wikiguard-unavailable-login.
 */
class LoginPreAuthenticationProvider extends AbstractPreAuthenticationProvider {
	/** The device cookie's name (after $wgCookiePrefix). */
	public const COOKIE = 'wikiguardDevice';
	/** How long the device cookie lasts, in seconds. */
	private const COOKIE_LIFETIME = 365 * 86400;
	/** Authentication session data: the attempt the door was asked about. */
	private const SESSION_KEY = 'WikiGuard:loginAttempt';
	/** ConfirmEdit's session flag that makes its login form show a CAPTCHA. */
	private const CONFIRMEDIT_FLAG = 'ConfirmEdit:loginCaptchaPerUserTriggered';

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
	public function testForAuthentication( array $reqs ) {
		try {
			return $this->test( $reqs );
		} catch ( \Throwable $e ) {
			$this->log->error( 'WikiGuard: the login check failed ({error})', [
				'error' => get_class( $e ) . ': ' . $e->getMessage(),
			] );
			return $this->client->failsClosed( 'accounts' )
				? StatusValue::newFatal( 'wikiguard-unavailable-login' )
				: StatusValue::newGood();
		}
	}

	/**
	 * @param AuthenticationRequest[] $reqs
	 * @return StatusValue
	 */
	private function test( array $reqs ): StatusValue {
		if ( !$this->config->get( 'WikiGuardLoginThrottle' ) ) {
			return StatusValue::newGood();
		}
		try {
			$username = AuthenticationRequest::getUsernameFromRequests( $reqs );
		} catch ( UnexpectedValueException $e ) {
			$username = null;
		}
		if ( $username === null || trim( $username ) === '' ) {
			// Nothing to count against (a login method without a user name).
			return StatusValue::newGood();
		}
		$username = $this->canonical( $username );
		$request = $this->manager->getRequest();
		$r = $this->client->call( 'accounts', 'POST', '/v1/login/attempt', [
			'username' => $username,
			'ip' => $request->getIP(),
			'user_agent' => (string)$request->getHeader( 'User-Agent' ),
		] );
		if ( !$r->ok() ) {
			return $this->unavailable( $r );
		}
		$decision = (string)( $r->body['decision'] ?? 'allow' );
		if ( $decision === 'throttle' ) {
			$wait = max( 1, (int)( $r->body['retry_after_secs'] ?? 60 ) );
			$this->log->info( 'WikiGuard: sign-in to {user} throttled for {wait} s (scope {scope})', [
				'user' => $username, 'wait' => $wait, 'scope' => (string)( $r->body['scope'] ?? '' ),
			] );
			return StatusValue::newFatal(
				wfMessage( 'wikiguard-login-throttled' )->params( Message::durationParam( $wait ) )
			);
		}
		if ( $decision === 'require-challenge' ) {
			$refusal = $this->challenge( $reqs, $username, (string)( $r->body['reason'] ?? '' ) );
			if ( $refusal ) {
				return $refusal;
			}
		}
		$this->manager->setAuthenticationSessionData( self::SESSION_KEY, [ 'username' => $username ] );
		return StatusValue::newGood();
	}

	/**
	 * The door asks for a CAPTCHA. With ConfirmEdit: its CAPTCHA must be solved in this request
	 * (the refusal makes the next form carry one). Without: logged, and the attempt proceeds.
	 *
	 * @param AuthenticationRequest[] $reqs
	 * @param string $username
	 * @param string $reason the door's reason code
	 * @return StatusValue|null a refusal, or null to let the password be checked
	 */
	private function challenge( array $reqs, string $username, string $reason ): ?StatusValue {
		if ( !ExtensionRegistry::getInstance()->isLoaded( 'ConfirmEdit' )
			|| !class_exists( ConfirmEditHooks::class )
			|| !class_exists( CaptchaAuthenticationRequest::class )
		) {
			$this->log->info(
				'WikiGuard: a CAPTCHA is asked for sign-ins to {user} ({reason}), ' .
					'but ConfirmEdit is not installed; the attempt proceeds',
				[ 'user' => $username, 'reason' => $reason ]
			);
			return null;
		}
		$captcha = ConfirmEditHooks::getInstance();
		$captcha->setAction( 'badlogin' );
		$captcha->setTrigger( "wikiguard: sign-in to '$username'" );
		/** @var CaptchaAuthenticationRequest|null $req */
		$req = AuthenticationRequest::getRequestByClass( $reqs, CaptchaAuthenticationRequest::class, true );
		$session = $this->manager->getRequest()->getSession();
		if ( $req && (string)$req->captchaWord !== ''
			&& $captcha->passCaptchaLimited( $req->captchaId, $req->captchaWord, $session->getUser() )
		) {
			$this->log->info( 'WikiGuard: CAPTCHA solved for a sign-in to {user} ({reason})', [
				'user' => $username, 'reason' => $reason,
			] );
			return null;
		}
		// ConfirmEdit shows its CAPTCHA on the next login form when this flag is set, and
		// clears it after a successful login.
		$session->set( self::CONFIRMEDIT_FLAG, true );
		$session->persist();
		$this->log->info( 'WikiGuard: sign-in to {user} needs a CAPTCHA ({reason}); {state}', [
			'user' => $username, 'reason' => $reason, 'state' => $req ? 'wrong answer' : 'none given',
		] );
		return StatusValue::newFatal( 'wikiguard-login-challenge' );
	}

	/**
	 * @param Response $r
	 * @return StatusValue
	 */
	private function unavailable( Response $r ): StatusValue {
		if ( $this->client->failsClosed( 'accounts' ) ) {
			$this->log->warning(
				'WikiGuard: the accounts door did not answer a login attempt ({error}); failing closed',
				[ 'error' => $r->error ]
			);
			return StatusValue::newFatal( 'wikiguard-unavailable-login' );
		}
		$this->log->warning( 'WikiGuard: the accounts door did not answer a login attempt ({error}); failing open', [
			'error' => $r->error,
		] );
		return StatusValue::newGood();
	}

	/**
	 * @inheritDoc
	 */
	public function postAuthentication( $user, AuthenticationResponse $response ) {
		try {
			$this->report( $user, $response );
		} catch ( \Throwable $e ) {
			$this->log->error( 'WikiGuard: reporting a login failed ({error})', [
				'error' => get_class( $e ) . ': ' . $e->getMessage(),
			] );
		}
	}

	/**
	 * @param \User|null $user
	 * @param AuthenticationResponse $response
	 */
	private function report( $user, AuthenticationResponse $response ): void {
		$attempt = $this->manager->getAuthenticationSessionData( self::SESSION_KEY );
		if ( !is_array( $attempt ) ) {
			// The door was not asked (disabled, throttled, CAPTCHA missing, unreachable).
			return;
		}
		$this->manager->removeAuthenticationSessionData( self::SESSION_KEY );
		$success = $response->status === AuthenticationResponse::PASS;
		if ( !$success && $response->status !== AuthenticationResponse::FAIL ) {
			return;
		}
		$request = $this->manager->getRequest();
		$body = [
			'username' => $success && $user ? $this->canonical( $user->getName() ) : (string)$attempt['username'],
			'ip' => $request->getIP(),
			'user_agent' => (string)$request->getHeader( 'User-Agent' ),
			'success' => $success,
		];
		$device = $request->getCookie( self::COOKIE );
		if ( $success && is_string( $device ) && self::plausibleCookie( $device ) ) {
			$body['device'] = $device;
		}
		$r = $this->client->call( 'accounts', 'POST', '/v1/login/result', $body );
		if ( !$r->ok() ) {
			// Bookkeeping only: the login already happened either way.
			$this->log->warning( 'WikiGuard: the accounts door did not take a login result ({error})', [
				'error' => $r->error,
			] );
			return;
		}
		if ( !$success || !$user ) {
			return;
		}
		$cookie = $r->body['device_cookie'] ?? null;
		if ( is_string( $cookie ) && self::plausibleCookie( $cookie ) ) {
			$request->response()->setCookie( self::COOKIE, $cookie, time() + self::COOKIE_LIFETIME, [
				'httpOnly' => true,
			] );
		}
		if ( !empty( $r->body['notify'] ) && $this->config->get( 'WikiGuardNewDeviceNotice' ) ) {
			$this->log->info( 'WikiGuard: {user} signed in from a new browser and network; telling them', [
				'user' => $user->getName(),
			] );
			Notices::fromServices()->tell( $user, Notices::NEW_DEVICE );
		}
	}

	/**
	 * A device cookie's shape (the service signs it; this only keeps junk off the wire).
	 *
	 * @param string $value
	 * @return bool
	 */
	private static function plausibleCookie( string $value ): bool {
		return (bool)preg_match( '/^[A-Za-z0-9._~-]{1,256}$/', $value );
	}

	/**
	 * MediaWiki's canonical form of a typed user name (the service normalises again).
	 *
	 * @param string $username
	 * @return string
	 */
	private function canonical( string $username ): string {
		$canonical = $this->userNameUtils->getCanonical( $username, UserNameUtils::RIGOR_USABLE );
		return $canonical !== false ? $canonical : mb_substr( trim( $username ), 0, 255 );
	}
}
