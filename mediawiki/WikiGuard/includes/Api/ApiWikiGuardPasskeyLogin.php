<?php

namespace MediaWiki\Extension\WikiGuard\Api;

use ApiBase;
use ApiMain;
use MediaWiki\Auth\AuthManager;
use MediaWiki\Extension\WikiGuard\Auth\SecondFactorAuthenticationProvider;
use MediaWiki\Extension\WikiGuard\Client;

/**
 * `action=wikiguardpasskeylogin`: during the second step of a login (after the password
 * passed, for an account with a passkey), the options for `navigator.credentials.get`
 * from `passkeys/login/begin`. The account is the one whose login is in progress in this
 * session; nobody else's options can be asked for. The browser's answer goes back in the
 * login form's `wikiguardpasskey` field. POST with a login token.
 */
class ApiWikiGuardPasskeyLogin extends ApiBase {
	/** @var Client */
	private $client;
	/** @var AuthManager */
	private $authManager;

	/**
	 * @param ApiMain $main
	 * @param string $moduleName
	 * @param Client $client
	 * @param AuthManager $authManager
	 */
	public function __construct( ApiMain $main, $moduleName, Client $client, AuthManager $authManager ) {
		parent::__construct( $main, $moduleName );
		$this->client = $client;
		$this->authManager = $authManager;
	}

	/**
	 * @inheritDoc
	 */
	public function execute() {
		$state = $this->authManager->getAuthenticationSessionData( SecondFactorAuthenticationProvider::SESSION_KEY );
		if ( !is_array( $state ) || empty( $state['passkey'] ) || !is_string( $state['user'] ?? null ) ) {
			$this->dieWithError( 'wikiguard-api-passkey-no-login', 'nologin' );
		}
		$r = $this->client->call( 'accounts', 'POST',
			'/v1/accounts/' . rawurlencode( $state['user'] ) . '/passkeys/login/begin', [] );
		if ( !$r->ok() ) {
			$this->dieWithError( 'wikiguard-api-unavailable', 'wikiguard-unavailable' );
		}
		if ( isset( $r->body['ok'] ) && !$r->body['ok'] ) {
			$this->dieWithError( 'wikiguard-api-passkey-refused', 'wikiguard-passkey-refused' );
		}
		$this->getResult()->addValue( null, $this->getModuleName(), [
			'options' => json_encode( $r->body, JSON_UNESCAPED_SLASHES ),
		] );
	}

	/**
	 * @inheritDoc
	 */
	public function mustBePosted() {
		return true;
	}

	/**
	 * @inheritDoc
	 */
	public function needsToken() {
		return 'login';
	}

	/**
	 * @inheritDoc
	 */
	public function isInternal() {
		return true;
	}

	/**
	 * @inheritDoc
	 */
	protected function getAllowedParams() {
		return [];
	}
}
