<?php

namespace MediaWiki\Extension\WikiGuard\Hooks;

use BagOStuff;
use Config;
use Html;
use MediaWiki\Hook\BeforePageDisplayHook;
use MediaWiki\Languages\LanguageFactory;
use MediaWiki\Logger\LoggerFactory;
use MediaWiki\MediaWikiServices;
use MediaWiki\User\UserIdentity;
use MediaWiki\User\UserOptionsLookup;
use OutputPage;
use SpecialPage;
use User;

/**
 * What the account protections tell users on the wiki, and where it is kept.
 *
 * - **Sign-in notices** (a sign-in from a new browser and network; the right password followed
 *   by wrong second-factor codes) are kept per account in the main object stash for 30 days
 *   and shown at the top of every page the account views, on every device, until the user
 *   dismisses them on Special:WikiGuardSecurity. They are also e-mailed when the account has a
 *   confirmed address and the wiki sends e-mail. They are not kept in the session: the session
 *   that signed in may be the intruder's, and the owner must see the notice on their own
 *   devices. They are not talk-page messages either: those are public, and who signs in from
 *   where is nobody else's business.
 * - **Session reminders** are for the person who just signed in: "your groups need a second
 *   factor, set one up" and "you used a recovery code, N are left".
 *
 * It also loads the login form's passkey script (ext.wikiguard.login) on the second step of
 * a login for an account with a passkey.
 */
class Notices implements BeforePageDisplayHook {
	/** A sign-in from a browser and network the account had not used in 30 days. */
	public const NEW_DEVICE = 'new-device';
	/** The right password, then repeated wrong second-factor codes. */
	public const PASSWORD_KNOWN = 'password-known';
	/** Session key: the user's groups need a second factor and they have none. */
	public const SESSION_ENROL = 'WikiGuard:enrolReminder';
	/** Session key: a recovery code was just used; the value is how many are left. */
	public const SESSION_RECOVERY = 'WikiGuard:recoveryUsed';

	/** Notices kept per account (the newest). */
	private const MAX_NOTICES = 10;
	/** How long a notice is kept, in seconds. */
	private const TTL = 30 * 86400;

	/** @var BagOStuff */
	private $stash;
	/** @var Config */
	private $config;
	/** @var UserOptionsLookup */
	private $userOptionsLookup;
	/** @var LanguageFactory */
	private $languageFactory;

	/**
	 * @param BagOStuff $stash the main object stash
	 * @param Config $config the main config
	 * @param UserOptionsLookup $userOptionsLookup
	 * @param LanguageFactory $languageFactory
	 */
	public function __construct(
		BagOStuff $stash,
		Config $config,
		UserOptionsLookup $userOptionsLookup,
		LanguageFactory $languageFactory
	) {
		$this->stash = $stash;
		$this->config = $config;
		$this->userOptionsLookup = $userOptionsLookup;
		$this->languageFactory = $languageFactory;
	}

	/**
	 * For the authentication providers and the special page, which have no hook wiring.
	 *
	 * @return self
	 */
	public static function fromServices(): self {
		$services = MediaWikiServices::getInstance();
		return new self(
			$services->getMainObjectStash(),
			$services->getMainConfig(),
			$services->getUserOptionsLookup(),
			$services->getLanguageFactory()
		);
	}

	/**
	 * Tells the account's owner: an on-wiki notice, and an e-mail when their address is
	 * confirmed and the wiki sends e-mail.
	 *
	 * @param User $user
	 * @param string $kind self::NEW_DEVICE or self::PASSWORD_KNOWN
	 */
	public function tell( User $user, string $kind ): void {
		$now = wfTimestampNow();
		$this->record( $user, $kind, $now );
		$this->mail( $user, $kind, $now );
	}

	/**
	 * @param UserIdentity $user
	 * @return string
	 */
	private function key( UserIdentity $user ): string {
		return $this->stash->makeKey( 'wikiguard-signin-notices', $user->getId() );
	}

	/**
	 * @param UserIdentity $user
	 * @param string $kind
	 * @param string $timestamp TS_MW
	 */
	private function record( UserIdentity $user, string $kind, string $timestamp ): void {
		if ( !$user->isRegistered() ) {
			return;
		}
		$this->stash->merge(
			$this->key( $user ),
			static function ( BagOStuff $cache, $key, $current ) use ( $kind, $timestamp ) {
				$notices = is_array( $current ) ? $current : [];
				$notices[] = [ 'kind' => $kind, 'time' => $timestamp ];
				return array_slice( $notices, -self::MAX_NOTICES );
			},
			self::TTL
		);
	}

	/**
	 * The account's notices, oldest first.
	 *
	 * @param UserIdentity $user
	 * @return array[] each [ 'kind' => string, 'time' => TS_MW string ]
	 */
	public function forUser( UserIdentity $user ): array {
		if ( !$user->isRegistered() ) {
			return [];
		}
		$notices = $this->stash->get( $this->key( $user ) );
		return is_array( $notices ) ? array_values( array_filter( $notices, 'is_array' ) ) : [];
	}

	/**
	 * Forgets the account's notices (the user has read them).
	 *
	 * @param UserIdentity $user
	 */
	public function dismiss( UserIdentity $user ): void {
		if ( $user->isRegistered() ) {
			$this->stash->delete( $this->key( $user ) );
		}
	}

	/**
	 * @param User $user
	 * @param string $kind
	 * @param string $timestamp TS_MW
	 */
	private function mail( User $user, string $kind, string $timestamp ): void {
		if ( !$this->config->get( 'EnableEmail' ) || !$user->isEmailConfirmed() ) {
			return;
		}
		$code = (string)$this->userOptionsLookup->getOption( $user, 'language' );
		$lang = $this->languageFactory->getLanguage( $code !== '' ? $code : 'en' );
		$params = [
			$user->getName(),
			$lang->userDate( $timestamp, $user ),
			$lang->userTime( $timestamp, $user ),
			SpecialPage::getTitleFor( 'ChangePassword' )->getCanonicalURL(),
			SpecialPage::getTitleFor( 'WikiGuardSecurity' )->getCanonicalURL(),
		];
		$subject = wfMessage( "wikiguard-email-$kind-subject" )->inLanguage( $lang )->text();
		$body = wfMessage( "wikiguard-email-$kind-body", ...$params )->inLanguage( $lang )->text();
		try {
			$status = $user->sendMail( $subject, $body );
			if ( !$status->isOK() ) {
				LoggerFactory::getInstance( 'WikiGuard' )->warning(
					'WikiGuard: the {kind} e-mail to {user} could not be sent',
					[ 'kind' => $kind, 'user' => $user->getName() ]
				);
			}
		} catch ( \Throwable $e ) {
			LoggerFactory::getInstance( 'WikiGuard' )->warning(
				'WikiGuard: the {kind} e-mail to {user} could not be sent ({error})',
				[ 'kind' => $kind, 'user' => $user->getName(), 'error' => get_class( $e ) ]
			);
		}
	}

	/**
	 * The HTML of one sign-in notice, for page tops and Special:WikiGuardSecurity.
	 *
	 * @param OutputPage|\IContextSource $context
	 * @param array $notice [ 'kind', 'time' ]
	 * @return string
	 */
	public static function noticeText( $context, array $notice ): string {
		$kind = $notice['kind'] === self::PASSWORD_KNOWN ? self::PASSWORD_KNOWN : self::NEW_DEVICE;
		$user = $context->getUser();
		$lang = $context->getLanguage();
		$time = (string)$notice['time'];
		return $context->msg( "wikiguard-notice-$kind" )
			->params( $lang->userDate( $time, $user ), $lang->userTime( $time, $user ) )
			->parse();
	}

	/**
	 * @inheritDoc
	 */
	public function onBeforePageDisplay( $out, $skin ): void {
		try {
			$this->show( $out );
		} catch ( \Throwable $e ) {
			// Never let a notice break a page view.
			LoggerFactory::getInstance( 'WikiGuard' )->error(
				'WikiGuard: showing notices failed ({error})', [ 'error' => get_class( $e ) . ': ' . $e->getMessage() ]
			);
		}
	}

	/**
	 * @param OutputPage $out
	 */
	private function show( OutputPage $out ): void {
		$title = $out->getTitle();
		if ( $title && $title->isSpecial( 'Userlogin' ) && str_contains( $out->getHTML(), 'wikiguardpasskey' ) ) {
			// The second step of a login, for an account with a passkey.
			$out->addModules( 'ext.wikiguard.login' );
		}
		$user = $out->getUser();
		if ( !$user->isRegistered() ) {
			return;
		}
		$onSecurityPage = $title && $title->isSpecial( 'WikiGuardSecurity' );
		$session = $out->getRequest()->getSession();
		$boxes = [];
		$remaining = $session->get( self::SESSION_RECOVERY );
		if ( $remaining !== null ) {
			$session->remove( self::SESSION_RECOVERY );
			$boxes[] = Html::warningBox(
				$out->msg( 'wikiguard-notice-recovery-used' )->numParams( (int)$remaining )->parse(),
				'wikiguard-recovery-used'
			);
		}
		if ( !$onSecurityPage ) {
			if ( $session->get( self::SESSION_ENROL ) ) {
				$boxes[] = Html::warningBox(
					$out->msg( 'wikiguard-notice-enrol' )->parse(), 'wikiguard-enrol-reminder'
				);
			}
			$notices = $this->forUser( $user );
			if ( $notices ) {
				$latest = end( $notices );
				$boxes[] = Html::warningBox(
					self::noticeText( $out, $latest ) . ' ' .
						$out->msg( 'wikiguard-notice-review' )->numParams( count( $notices ) )->parse(),
					'wikiguard-signin-notice'
				);
			}
		}
		if ( $boxes ) {
			$out->prependHTML( Html::rawElement( 'div', [ 'class' => 'wikiguard-notices' ], implode( '', $boxes ) ) );
		}
	}
}
