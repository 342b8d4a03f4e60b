<?php

namespace MediaWiki\Extension\WikiGuard\Api;

use ApiBase;
use ApiMain;
use MediaWiki\Auth\AuthManager;
use MediaWiki\Extension\WikiGuard\Client;
use MediaWiki\Extension\WikiGuard\Hooks\Notices;
use MediaWiki\Logger\LoggerFactory;
use Wikimedia\ParamValidator\ParamValidator;

/**
 * `action=wikiguardpasskey`: registers a passkey for the logged-in user, for the script of
 * Special:WikiGuardSecurity. `step=begin` returns the options for
 * `navigator.credentials.create` (from `passkeys/register/begin`), `step=finish` forwards the
 * browser's credential to `passkeys/register/finish`. POST with a CSRF token, and only after
 * a recent login, as for the special page.
 */
class ApiWikiGuardPasskey extends ApiBase {
	/** Refusal reasons of the door => message keys. */
	private const REFUSALS = [
		'expired' => 'wikiguard-api-passkey-expired',
		'duplicate' => 'wikiguard-api-passkey-duplicate',
		'too-many' => 'wikiguard-api-passkey-too-many',
		'wrong-origin' => 'wikiguard-api-passkey-wrong-origin',
	];

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
		$user = $this->getUser();
		if ( !$user->isNamed() ) {
			$this->dieWithError( 'apierror-mustbeloggedin-generic', 'notloggedin' );
		}
		if ( $this->authManager->securitySensitiveOperationStatus( 'WikiGuardSecurity' ) !== AuthManager::SEC_OK ) {
			$this->dieWithError( 'wikiguard-api-reauth', 'reauthenticate' );
		}
		$params = $this->extractRequestParams();
		$path = '/v1/accounts/' . rawurlencode( $user->getName() ) . '/passkeys/register/';
		if ( $params['step'] === 'begin' ) {
			$name = trim( (string)( $params['name'] ?? '' ) );
			if ( $name === '' ) {
				$name = $this->msg( 'wikiguard-security-passkey-default-name' )->text();
			}
			$r = $this->client->call( 'accounts', 'POST', $path . 'begin', [ 'name' => mb_substr( $name, 0, 100 ) ] );
			if ( !$r->ok() ) {
				$this->refuse( (string)( $r->body['error']['code'] ?? '' ), $r->refused() );
			}
			$this->getResult()->addValue( null, $this->getModuleName(), [
				'options' => json_encode( $r->body, JSON_UNESCAPED_SLASHES ),
			] );
			return;
		}
		$credential = json_decode( (string)( $params['credential'] ?? '' ), true );
		if ( !is_array( $credential ) ) {
			$this->dieWithError( 'wikiguard-api-passkey-invalid', 'invalidcredential' );
		}
		$r = $this->client->call( 'accounts', 'POST', $path . 'finish', [
			'credential' => $credential,
			'ip' => $this->getRequest()->getIP(),
		] );
		if ( !$r->ok() ) {
			$this->refuse( (string)( $r->body['error']['code'] ?? '' ), $r->refused() );
		}
		if ( empty( $r->body['ok'] ) ) {
			$this->refuse( (string)( $r->body['reason'] ?? '' ), true );
		}
		LoggerFactory::getInstance( 'WikiGuard' )->info( 'WikiGuard: {user} added a passkey', [
			'user' => $user->getName(),
		] );
		$this->getRequest()->getSession()->remove( Notices::SESSION_ENROL );
		$this->getResult()->addValue( null, $this->getModuleName(), [
			'result' => 'success',
			'id' => (string)( $r->body['id'] ?? '' ),
		] );
	}

	/**
	 * Ends the request with the message for a refusal reason.
	 *
	 * @param string $reason
	 * @param bool $answered the door answered (false: it could not be reached)
	 * @return never
	 */
	private function refuse( string $reason, bool $answered ) {
		if ( !$answered ) {
			$this->dieWithError( 'wikiguard-api-unavailable', 'wikiguard-unavailable' );
		}
		$key = self::REFUSALS[$reason] ?? 'wikiguard-api-passkey-refused';
		$code = preg_replace( '/[^a-z0-9-]+/', '-', strtolower( $reason ) );
		$this->dieWithError( $key, 'wikiguard-passkey-' . ( $code !== '' ? $code : 'refused' ) );
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
	public function isWriteMode() {
		return true;
	}

	/**
	 * @inheritDoc
	 */
	public function needsToken() {
		return 'csrf';
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
		return [
			'step' => [
				ParamValidator::PARAM_TYPE => [ 'begin', 'finish' ],
				ParamValidator::PARAM_REQUIRED => true,
			],
			'name' => [
				ParamValidator::PARAM_TYPE => 'string',
			],
			'credential' => [
				ParamValidator::PARAM_TYPE => 'text',
			],
		];
	}
}
