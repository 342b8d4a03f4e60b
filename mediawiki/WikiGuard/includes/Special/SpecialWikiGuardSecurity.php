<?php

namespace MediaWiki\Extension\WikiGuard\Special;

use Html;
use MediaWiki\Extension\WikiGuard\Client;
use MediaWiki\Extension\WikiGuard\Hooks\Notices;
use MediaWiki\Extension\WikiGuard\Response;
use MediaWiki\Logger\LoggerFactory;
use MediaWiki\MediaWikiServices;
use OOUI\ButtonInputWidget;
use OOUI\TextInputWidget;
use Psr\Log\LoggerInterface;
use SpecialPage;

/**
 * Special:WikiGuardSecurity: a logged-in user's second factors (authenticator app, recovery
 * codes, passkeys) and recent sign-in notices. Everything is the accounts door's; this page
 * shows it and forwards the user's choices. Every form posts with the edit token, and the page
 * asks for a recent login (the "WikiGuardSecurity" operation of $wgReauthenticateTime).
 * Adding a passkey needs the browser, so it is done by ext.wikiguard.security through
 * action=wikiguardpasskey.
 */
class SpecialWikiGuardSecurity extends SpecialPage {
	/** @var Client */
	private $client;
	/** @var LoggerInterface */
	private $log;

	/**
	 * @param Client $client
	 */
	public function __construct( Client $client ) {
		parent::__construct( 'WikiGuardSecurity' );
		$this->client = $client;
		$this->log = LoggerFactory::getInstance( 'WikiGuard' );
	}

	/**
	 * @inheritDoc
	 */
	public function doesWrites() {
		return true;
	}

	/**
	 * @inheritDoc
	 */
	protected function getGroupName() {
		return 'login';
	}

	/**
	 * @inheritDoc
	 */
	protected function getLoginSecurityLevel() {
		return $this->getName();
	}

	/**
	 * @inheritDoc
	 */
	public function execute( $subPage ) {
		$this->setHeaders();
		$this->requireNamedUser();
		if ( !$this->checkLoginSecurityLevel( $this->getLoginSecurityLevel() ) ) {
			return;
		}
		$out = $this->getOutput();
		$out->enableOOUI();
		$out->addModuleStyles( 'ext.wikiguard.security.styles' );
		$out->addModules( 'ext.wikiguard.security' );
		$out->addWikiMsg( 'wikiguard-security-intro' );
		try {
			$request = $this->getRequest();
			$replaced = [];
			$action = $request->getVal( 'wikiguardaction' );
			if ( $request->wasPosted() && $action !== null ) {
				if ( !$this->getUser()->matchEditToken( $request->getVal( 'wpEditToken' ) ) ) {
					$out->addHTML( Html::errorBox( $this->msg( 'sessionfailure' )->parse() ) );
				} else {
					$replaced = $this->act( $action );
				}
			}
			$this->showState( $replaced );
		} catch ( \Throwable $e ) {
			$this->log->error( 'WikiGuard: Special:WikiGuardSecurity failed ({error})', [
				'error' => get_class( $e ) . ': ' . $e->getMessage(),
			] );
			$out->addHTML( Html::errorBox( $this->msg( 'wikiguard-security-unavailable' )->parse() ) );
		}
	}

	/**
	 * The user's part of the accounts door.
	 *
	 * @param string $rest starting with /
	 * @return string
	 */
	private function path( string $rest ): string {
		return '/v1/accounts/' . rawurlencode( $this->getUser()->getName() ) . $rest;
	}

	/**
	 * Carries out a posted action and shows its outcome.
	 *
	 * @param string $action
	 * @return string[] section id ('totp', 'recovery') => HTML that shows the outcome in its place
	 */
	private function act( string $action ): array {
		$out = $this->getOutput();
		$user = $this->getUser();
		switch ( $action ) {
			case 'totp-enroll':
				$r = $this->client->call( 'accounts', 'POST', $this->path( '/totp/enroll' ) );
				if ( $r->status === 409 ) {
					$out->addHTML( Html::warningBox( $this->msg( 'wikiguard-security-totp-already' )->parse() ) );
					return [];
				}
				if ( !$r->ok() ) {
					return $this->unavailable( $r );
				}
				$this->log->info( 'WikiGuard: {user} started setting up an authenticator app', [
					'user' => $user->getName(),
				] );
				return [ 'totp' => $this->enrolment( $r->body ) ];

			case 'totp-confirm':
				$code = trim( (string)$this->getRequest()->getVal( 'code', '' ) );
				$r = $this->client->call( 'accounts', 'POST', $this->path( '/totp/confirm' ), [
					'code' => $code, 'ip' => $this->getRequest()->getIP(),
				] );
				if ( !$r->ok() ) {
					return $this->unavailable( $r );
				}
				if ( !empty( $r->body['ok'] ) ) {
					$this->log->info( 'WikiGuard: {user} set up an authenticator app', [ 'user' => $user->getName() ] );
					$this->getRequest()->getSession()->remove( Notices::SESSION_ENROL );
					$out->addHTML( Html::successBox( $this->msg( 'wikiguard-security-totp-enabled' )->parse() ) );
					return [];
				}
				$reason = (string)( $r->body['reason'] ?? '' );
				$key = in_array( $reason, [ 'not-enrolling', 'expired' ], true )
					? 'wikiguard-security-totp-confirm-expired'
					: 'wikiguard-security-totp-confirm-wrong';
				return [ 'totp' => $this->section( 'wikiguard-security-totp-heading', 'totp',
					Html::errorBox( $this->msg( $key )->parse() ) .
					$this->confirmForm() . $this->form( 'totp-enroll', 'wikiguard-security-totp-restart', [] )
				) ];

			case 'totp-remove':
				$r = $this->client->call( 'accounts', 'DELETE', $this->path( '/totp' ) );
				if ( !$r->ok() ) {
					return $this->unavailable( $r );
				}
				$this->log->info( 'WikiGuard: {user} removed their authenticator app', [ 'user' => $user->getName() ] );
				$out->addHTML( Html::successBox( $this->msg( 'wikiguard-security-totp-removed' )->parse() ) );
				return [];

			case 'recovery-generate':
				$r = $this->client->call( 'accounts', 'POST', $this->path( '/recovery' ) );
				if ( !$r->ok() || !is_array( $r->body['codes'] ?? null ) ) {
					return $this->unavailable( $r );
				}
				$this->log->info( 'WikiGuard: {user} made new recovery codes', [ 'user' => $user->getName() ] );
				$items = '';
				foreach ( $r->body['codes'] as $code ) {
					$items .= Html::rawElement( 'li', [], Html::element( 'code', [], (string)$code ) );
				}
				return [ 'recovery' => $this->section( 'wikiguard-security-recovery-heading', 'recovery',
					Html::warningBox( $this->msg( 'wikiguard-security-recovery-shown-once' )->parse() ) .
					Html::rawElement( 'ul', [
						'id' => 'wikiguard-recovery-codes',
						'class' => 'wikiguard-recovery-codes',
					], $items )
				) ];

			case 'passkey-remove':
				$id = (string)$this->getRequest()->getVal( 'passkey', '' );
				if ( !preg_match( '/^[A-Za-z0-9_-]{1,1024}$/', $id ) ) {
					$out->addHTML( Html::errorBox( $this->msg( 'wikiguard-security-passkey-unknown' )->parse() ) );
					return [];
				}
				$r = $this->client->call( 'accounts', 'DELETE', $this->path( '/passkeys/' . rawurlencode( $id ) ) );
				if ( !$r->ok() ) {
					return $this->unavailable( $r );
				}
				if ( empty( $r->body['ok'] ) ) {
					$out->addHTML( Html::errorBox( $this->msg( 'wikiguard-security-passkey-unknown' )->parse() ) );
					return [];
				}
				$this->log->info( 'WikiGuard: {user} removed a passkey', [ 'user' => $user->getName() ] );
				$out->addHTML( Html::successBox( $this->msg( 'wikiguard-security-passkey-removed' )->parse() ) );
				return [];

			case 'notices-dismiss':
				Notices::fromServices()->dismiss( $user );
				$out->addHTML( Html::successBox( $this->msg( 'wikiguard-security-notices-dismissed' )->parse() ) );
				return [];
		}
		return [];
	}

	/**
	 * @param Response $r
	 * @return string[]
	 */
	private function unavailable( Response $r ): array {
		$this->log->warning( 'WikiGuard: Special:WikiGuardSecurity could not reach the accounts door ({error})', [
			'error' => $r->error,
		] );
		$this->getOutput()->addHTML( Html::errorBox( $this->msg( 'wikiguard-security-unavailable' )->parse() ) );
		return [];
	}

	/**
	 * The enrolment of an authenticator app: the QR code, the secret as text, the confirm form.
	 *
	 * @param array $enrol the door's answer (`secret`, `uri`, `qr_svg`, `expires`)
	 * @return string HTML
	 */
	private function enrolment( array $enrol ): string {
		$html = $this->msg( 'wikiguard-security-totp-scan' )->parseAsBlock();
		// The QR code is the service's SVG document, shown as an image (a data: URL), never
		// inlined: whatever the document held, a browser runs no script in an <img>.
		$svg = trim( (string)( $enrol['qr_svg'] ?? '' ) );
		if ( preg_match( '/^(<\?xml[^>]*\?>\s*)?<svg[\s>]/', $svg ) ) {
			$html .= Html::rawElement( 'div', [ 'class' => 'wikiguard-totp-qr' ],
				Html::element( 'img', [
					'src' => 'data:image/svg+xml;base64,' . base64_encode( $svg ),
					'alt' => $this->msg( 'wikiguard-security-totp-qr-alt' )->text(),
				] )
			);
		}
		$secret = (string)( $enrol['secret'] ?? '' );
		$html .= Html::rawElement( 'p', [],
			$this->msg( 'wikiguard-security-totp-secret' )->escaped() . ' ' .
			Html::element( 'code', [ 'id' => 'wikiguard-totp-secret', 'class' => 'wikiguard-totp-secret' ],
				trim( chunk_split( $secret, 4, ' ' ) ) )
		);
		$uri = (string)( $enrol['uri'] ?? '' );
		if ( str_starts_with( $uri, 'otpauth://' ) ) {
			$html .= Html::rawElement( 'p', [],
				Html::element( 'a', [ 'href' => $uri ], $this->msg( 'wikiguard-security-totp-open-app' )->text() ) );
		}
		$expires = (int)( $enrol['expires'] ?? 0 );
		if ( $expires > 0 ) {
			$html .= $this->msg( 'wikiguard-security-totp-expires' )
				->params( $this->getLanguage()->userTime( wfTimestamp( TS_MW, $expires ), $this->getUser() ) )
				->parseAsBlock();
		}
		$html .= $this->confirmForm();
		return $this->section( 'wikiguard-security-totp-heading', 'totp', $html );
	}

	/**
	 * @return string HTML
	 */
	private function confirmForm(): string {
		$field = new TextInputWidget( [
			'name' => 'code',
			'inputId' => 'wikiguard-totp-code',
			'required' => true,
			'autocomplete' => false,
			'maxLength' => 10,
		] );
		$label = Html::element( 'label', [ 'for' => 'wikiguard-totp-code' ],
			$this->msg( 'wikiguard-security-totp-code' )->text() );
		return $this->form( 'totp-confirm', 'wikiguard-security-totp-confirm', [ 'primary', 'progressive' ],
			Html::rawElement( 'div', [ 'class' => 'wikiguard-field' ], $label . $field ) );
	}

	/**
	 * The page as it is now: requirement, notices, and each kind of factor.
	 *
	 * @param string[] $replaced section id => the HTML of an action's outcome, shown instead
	 */
	private function showState( array $replaced ): void {
		$out = $this->getOutput();
		$user = $this->getUser();
		$groups = MediaWikiServices::getInstance()->getUserGroupManager()->getUserEffectiveGroups( $user );
		$factors = $this->client->call( 'accounts', 'GET',
			$this->path( '/factors' ) . '?groups=' . rawurlencode( implode( ',', $groups ) ) );
		$passkeys = $this->client->call( 'accounts', 'GET', $this->path( '/passkeys' ) );
		if ( !$factors->ok() || !$passkeys->ok() ) {
			$this->unavailable( $factors->ok() ? $passkeys : $factors );
			// An outcome such as new recovery codes is shown once: never lose it.
			$out->addHTML( implode( '', $replaced ) );
			return;
		}
		$kinds = array_map( 'strval', (array)( $factors->body['kinds_enrolled'] ?? [] ) );
		if ( !empty( $factors->body['required'] ) && empty( $factors->body['satisfied'] ) ) {
			$out->addHTML( Html::warningBox(
				$this->msg( 'wikiguard-security-required' )->parse(), 'wikiguard-security-required'
			) );
		} elseif ( !empty( $factors->body['satisfied'] ) ) {
			$this->getRequest()->getSession()->remove( Notices::SESSION_ENROL );
		}
		$out->addHTML( $this->noticesSection() );
		$out->addHTML( $replaced['totp'] ?? $this->totpSection( in_array( 'totp', $kinds, true ) ) );
		$out->addHTML( $replaced['recovery'] ?? $this->recoverySection( in_array( 'recovery-codes', $kinds, true ) ) );
		$out->addHTML( $this->passkeySection( (array)( $passkeys->body['passkeys'] ?? [] ) ) );
	}

	/**
	 * @return string HTML ('' without notices)
	 */
	private function noticesSection(): string {
		$notices = Notices::fromServices()->forUser( $this->getUser() );
		if ( !$notices ) {
			return '';
		}
		$items = '';
		foreach ( array_reverse( $notices ) as $notice ) {
			$items .= Html::rawElement( 'li', [], Notices::noticeText( $this->getContext(), $notice ) );
		}
		return $this->section( 'wikiguard-security-notices-heading', 'notices',
			Html::rawElement( 'ul', [ 'class' => 'wikiguard-signin-notices' ], $items ) .
			$this->form( 'notices-dismiss', 'wikiguard-security-notices-dismiss', [] )
		);
	}

	/**
	 * @param bool $enrolled
	 * @return string HTML
	 */
	private function totpSection( bool $enrolled ): string {
		if ( $enrolled ) {
			$html = $this->msg( 'wikiguard-security-totp-on' )->parseAsBlock() .
				$this->form( 'totp-remove', 'wikiguard-security-totp-remove', [ 'destructive' ] );
		} else {
			$html = $this->msg( 'wikiguard-security-totp-off' )->parseAsBlock() .
				$this->form( 'totp-enroll', 'wikiguard-security-totp-enroll', [ 'primary', 'progressive' ] );
		}
		return $this->section( 'wikiguard-security-totp-heading', 'totp', $html );
	}

	/**
	 * @param bool $has unused recovery codes exist
	 * @return string HTML
	 */
	private function recoverySection( bool $has ): string {
		$text = $has ? 'wikiguard-security-recovery-on' : 'wikiguard-security-recovery-off';
		$html = $this->msg( $text )->parseAsBlock() .
			$this->form( 'recovery-generate',
				$has ? 'wikiguard-security-recovery-regenerate' : 'wikiguard-security-recovery-generate', [] );
		return $this->section( 'wikiguard-security-recovery-heading', 'recovery', $html );
	}

	/**
	 * @param array $passkeys the door's list
	 * @return string HTML
	 */
	private function passkeySection( array $passkeys ): string {
		$lang = $this->getLanguage();
		$user = $this->getUser();
		$when = function ( $secs ) use ( $lang, $user ): string {
			return is_numeric( $secs ) && $secs > 0
				? $lang->userTimeAndDate( wfTimestamp( TS_MW, (int)$secs ), $user )
				: $this->msg( 'wikiguard-security-passkey-never' )->text();
		};
		$html = $this->msg( 'wikiguard-security-passkeys-intro' )->parseAsBlock();
		if ( $passkeys ) {
			$head = '';
			foreach ( [ 'name', 'created', 'last-used', 'synced', 'actions' ] as $column ) {
				$head .= Html::element( 'th', [], $this->msg( "wikiguard-security-passkey-column-$column" )->text() );
			}
			$rows = Html::rawElement( 'tr', [], $head );
			foreach ( $passkeys as $p ) {
				if ( !is_array( $p ) ) {
					continue;
				}
				$name = Html::element( 'span', [ 'class' => 'wikiguard-passkey-name' ], (string)( $p['name'] ?? '' ) );
				if ( !empty( $p['suspected_clone'] ) ) {
					$name .= ' ' . Html::element( 'strong', [ 'class' => 'wikiguard-passkey-suspect' ],
						$this->msg( 'wikiguard-security-passkey-suspect' )->text() );
				}
				$synced = $this->msg( !empty( $p['backed_up'] ) ? 'wikiguard-security-passkey-synced-yes'
					: 'wikiguard-security-passkey-synced-no' )->text();
				$rows .= Html::rawElement( 'tr', [],
					Html::rawElement( 'td', [], $name ) .
					Html::element( 'td', [], $when( $p['created'] ?? null ) ) .
					Html::element( 'td', [], $when( $p['last_used'] ?? null ) ) .
					Html::element( 'td', [], $synced ) .
					Html::rawElement( 'td', [], $this->form( 'passkey-remove', 'wikiguard-security-passkey-remove',
						[ 'destructive' ], '', [ 'passkey' => (string)( $p['id'] ?? '' ) ] ) )
				);
			}
			$html .= Html::rawElement( 'table', [ 'class' => 'wikitable wikiguard-passkey-list' ], $rows );
		} else {
			$html .= $this->msg( 'wikiguard-security-passkeys-none' )->parseAsBlock();
		}
		$add = new TextInputWidget( [
			'inputId' => 'wikiguard-passkey-name',
			'placeholder' => $this->msg( 'wikiguard-security-passkey-name-placeholder' )->text(),
			'maxLength' => 100,
		] );
		$button = new ButtonInputWidget( [
			'type' => 'button',
			'useInputTag' => false,
			'id' => 'wikiguard-passkey-add-button',
			'label' => $this->msg( 'wikiguard-security-passkey-add' )->text(),
			'flags' => [ 'progressive' ],
		] );
		$html .= Html::rawElement( 'div', [ 'id' => 'wikiguard-passkey-add', 'class' => 'wikiguard-passkey-add' ],
			Html::element( 'label', [ 'for' => 'wikiguard-passkey-name' ],
				$this->msg( 'wikiguard-security-passkey-name' )->text() ) . $add . $button
		);
		$html .= Html::element( 'p', [ 'id' => 'wikiguard-passkey-status', 'class' => 'wikiguard-passkey-status' ] );
		$html .= Html::rawElement( 'p', [ 'class' => 'wikiguard-passkey-nojs' ],
			$this->msg( 'wikiguard-security-passkey-nojs' )->parse() );
		return $this->section( 'wikiguard-security-passkeys-heading', 'passkeys', $html );
	}

	/**
	 * @param string $heading message key
	 * @param string $id
	 * @param string $html
	 * @return string HTML
	 */
	private function section( string $heading, string $id, string $html ): string {
		return Html::rawElement( 'div', [ 'class' => 'wikiguard-security-section', 'id' => "wikiguard-security-$id" ],
			Html::element( 'h2', [], $this->msg( $heading )->text() ) . $html );
	}

	/**
	 * A one-button form that posts an action with the edit token.
	 *
	 * @param string $action
	 * @param string $label message key of the button
	 * @param string[] $flags OOUI flags of the button
	 * @param string $fields more HTML inside the form
	 * @param array $hidden more hidden fields
	 * @return string HTML
	 */
	private function form(
		string $action, string $label, array $flags, string $fields = '', array $hidden = []
	): string {
		$html = Html::hidden( 'title', $this->getPageTitle()->getPrefixedDBkey() ) .
			Html::hidden( 'wikiguardaction', $action ) .
			Html::hidden( 'wpEditToken', $this->getUser()->getEditToken() );
		foreach ( $hidden as $name => $value ) {
			$html .= Html::hidden( $name, $value );
		}
		$html .= $fields . new ButtonInputWidget( [
			'type' => 'submit',
			'label' => $this->msg( $label )->text(),
			'flags' => $flags,
		] );
		return Html::rawElement( 'form', [
			'method' => 'post',
			'action' => wfScript(),
			'class' => "wikiguard-form wikiguard-form-$action",
		], $html );
	}
}
