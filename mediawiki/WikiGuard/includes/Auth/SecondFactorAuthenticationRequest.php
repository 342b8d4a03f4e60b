<?php

namespace MediaWiki\Extension\WikiGuard\Auth;

use MediaWiki\Auth\AuthenticationRequest;
use RawMessage;

/**
 * The second step of a login: a code (from an authenticator app, or a recovery code) in
 * `wikiguardcode`, or a passkey's signed assertion (WebAuthn JSON, filled in by the
 * ext.wikiguard.login script) in the hidden `wikiguardpasskey`. Both are optional so either
 * can be used; the provider asks again when neither is given.
 *
 * The metadata tells API clients which kinds the account has (`totp`, `passkey`,
 * `recovery`); a client that wants to use a passkey gets its options from
 * `action=wikiguardpasskeylogin` during this step.
 */
class SecondFactorAuthenticationRequest extends AuthenticationRequest {
	/** @var string the code the user typed */
	public $wikiguardcode = '';
	/** @var string the passkey assertion, as JSON */
	public $wikiguardpasskey = '';
	/** @var bool */
	private $totp;
	/** @var bool */
	private $passkey;
	/** @var bool */
	private $recovery;

	/**
	 * @param bool $totp the account has an authenticator app
	 * @param bool $passkey the account has a passkey
	 * @param bool $recovery the account has unused recovery codes
	 */
	public function __construct( bool $totp, bool $passkey, bool $recovery ) {
		$this->totp = $totp;
		$this->passkey = $passkey;
		$this->recovery = $recovery;
	}

	/**
	 * @inheritDoc
	 */
	public function getFieldInfo() {
		$fields = [
			'wikiguardcode' => [
				'type' => 'string',
				'label' => wfMessage( 'wikiguard-2fa-code-label' ),
				'help' => wfMessage( 'wikiguard-2fa-code-help' ),
				'optional' => true,
				'sensitive' => true,
			],
		];
		if ( $this->passkey ) {
			$fields['wikiguardpasskey'] = [
				'type' => 'hidden',
				'label' => wfMessage( 'wikiguard-2fa-passkey-label' ),
				'help' => wfMessage( 'wikiguard-2fa-passkey-help' ),
				'optional' => true,
				'sensitive' => true,
			];
		}
		return $fields;
	}

	/**
	 * Loads whichever of the two fields was sent (an absent field counts as empty, so an API
	 * client may send only `wikiguardcode`).
	 *
	 * @param array $data
	 * @return bool
	 */
	public function loadFromSubmission( array $data ) {
		if ( !isset( $data['wikiguardcode'] ) && !isset( $data['wikiguardpasskey'] ) ) {
			return false;
		}
		$this->wikiguardcode = is_string( $data['wikiguardcode'] ?? null ) ? trim( $data['wikiguardcode'] ) : '';
		$this->wikiguardpasskey = $this->passkey && is_string( $data['wikiguardpasskey'] ?? null )
			? trim( $data['wikiguardpasskey'] ) : '';
		return true;
	}

	/**
	 * @inheritDoc
	 */
	public function getMetadata() {
		return [
			'totp' => $this->totp,
			'passkey' => $this->passkey,
			'recovery' => $this->recovery,
		];
	}

	/**
	 * @inheritDoc
	 */
	public function describeCredentials() {
		return [
			'provider' => wfMessage( 'wikiguard-2fa-provider' ),
			'account' => new RawMessage( '$1', [ $this->username ] ),
		];
	}
}
