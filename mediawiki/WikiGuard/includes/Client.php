<?php

namespace MediaWiki\Extension\WikiGuard;

use Psr\Log\LoggerInterface;

/**
 * The one way the extension talks to the wikiguard service: JSON over HTTP with the check
 * token, a hard timeout, and a fail mode per door. It never throws and never logs bodies,
 * tokens or IP addresses.
 */
class Client {
	/** @var string */
	private $baseUrl;
	/** @var string|null */
	private $token;
	/** @var string|null */
	private $tokenFile;
	/** @var int */
	private $timeoutMs;
	/** @var array<string,string> */
	private $failModes;
	/** @var LoggerInterface */
	private $logger;

	/**
	 * @param string $baseUrl e.g. http://127.0.0.1:8750
	 * @param string|null $token the check token
	 * @param string|null $tokenFile a file whose first line is the check token
	 * @param int $timeoutMs per call
	 * @param array $failModes door => 'open'|'closed'
	 * @param LoggerInterface $logger channel WikiGuard
	 */
	public function __construct(
		string $baseUrl, $token, $tokenFile, int $timeoutMs, array $failModes, LoggerInterface $logger
	) {
		$this->baseUrl = rtrim( $baseUrl, '/' );
		$this->token = $token === null ? null : (string)$token;
		$this->tokenFile = $tokenFile === null ? null : (string)$tokenFile;
		$this->timeoutMs = max( 1, $timeoutMs );
		$this->failModes = $failModes;
		$this->logger = $logger;
	}

	/**
	 * Whether a door fails closed (refuses what it cannot check).
	 *
	 * @param string $door 'check' or 'accounts'
	 * @return bool
	 */
	public function failsClosed( string $door ): bool {
		return ( $this->failModes[$door] ?? 'open' ) === 'closed';
	}

	/**
	 * The bearer token, from the setting or the first line of the token file.
	 *
	 * @return string|null
	 */
	private function token() {
		if ( $this->token !== null && $this->token !== '' ) {
			return $this->token;
		}
		if ( $this->tokenFile !== null && $this->tokenFile !== '' ) {
			$text = @file_get_contents( $this->tokenFile );
			if ( $text === false ) {
				$this->logger->error( 'WikiGuard: the token file {file} cannot be read', [ 'file' => $this->tokenFile ] );
				return null;
			}
			$this->token = trim( strtok( $text, "\n" ) ?: '' );
			return $this->token;
		}
		return null;
	}

	/**
	 * One call. The answer is a Response whose ok() is false when the service could not be
	 * reached in time or answered an error; the door's fail mode is the caller's to apply.
	 *
	 * @param string $door 'check' or 'accounts', for the log
	 * @param string $method GET, POST, DELETE, PUT
	 * @param string $path starting with /
	 * @param array|null $body sent as JSON
	 * @return Response
	 */
	public function call( string $door, string $method, string $path, ?array $body = null ): Response {
		$headers = [ 'Accept: application/json' ];
		$token = $this->token();
		if ( $token !== null ) {
			$headers[] = 'Authorization: Bearer ' . $token;
		}
		$payload = null;
		if ( $body !== null ) {
			$payload = json_encode( $body, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE );
			$headers[] = 'Content-Type: application/json';
		}
		$url = $this->baseUrl . $path;
		$start = microtime( true );
		[ $status, $text, $transportError ] = function_exists( 'curl_init' )
			? $this->viaCurl( $method, $url, $headers, $payload )
			: $this->viaStream( $method, $url, $headers, $payload );
		$ms = (int)round( ( microtime( true ) - $start ) * 1000 );
		$route = strtok( $path, '?' );
		if ( $transportError !== null ) {
			$this->logger->warning( 'WikiGuard: the {door} door is unreachable ({error}) after {ms} ms on {method} {route}', [
				'door' => $door, 'error' => $transportError, 'ms' => $ms, 'method' => $method, 'route' => $route,
			] );
			return new Response( 0, null, $transportError );
		}
		$json = json_decode( (string)$text, true );
		if ( !is_array( $json ) ) {
			$this->logger->warning( 'WikiGuard: the {door} door answered {status} without JSON on {method} {route}', [
				'door' => $door, 'status' => $status, 'method' => $method, 'route' => $route,
			] );
			return new Response( $status, null, "HTTP $status without a JSON body" );
		}
		if ( $status >= 400 ) {
			$code = $json['error']['code'] ?? 'unknown';
			$level = $status >= 500 || $status === 401 ? 'error' : 'info';
			$this->logger->$level( 'WikiGuard: the {door} door answered {status} {code} on {method} {route}', [
				'door' => $door, 'status' => $status, 'code' => $code, 'method' => $method, 'route' => $route,
			] );
			return new Response( $status, $json, "HTTP $status $code" );
		}
		return new Response( $status, $json, null );
	}

	/**
	 * @param string $method
	 * @param string $url
	 * @param string[] $headers
	 * @param string|null $payload
	 * @return array [status, body, transport error or null]
	 */
	private function viaCurl( string $method, string $url, array $headers, ?string $payload ): array {
		$ch = curl_init( $url );
		curl_setopt_array( $ch, [
			CURLOPT_CUSTOMREQUEST => $method,
			CURLOPT_HTTPHEADER => array_merge( $headers, [ 'Expect:' ] ),
			CURLOPT_RETURNTRANSFER => true,
			CURLOPT_TIMEOUT_MS => $this->timeoutMs,
			CURLOPT_CONNECTTIMEOUT_MS => $this->timeoutMs,
			CURLOPT_NOSIGNAL => true,
			CURLOPT_FOLLOWLOCATION => false,
			CURLOPT_PROXY => '',
		] );
		if ( $payload !== null ) {
			curl_setopt( $ch, CURLOPT_POSTFIELDS, $payload );
		}
		$text = curl_exec( $ch );
		if ( $text === false ) {
			$error = curl_error( $ch );
			curl_close( $ch );
			return [ 0, null, $error ];
		}
		$status = (int)curl_getinfo( $ch, CURLINFO_RESPONSE_CODE );
		curl_close( $ch );
		return [ $status, $text, null ];
	}

	/**
	 * PHP streams, for installs without the curl extension.
	 *
	 * @param string $method
	 * @param string $url
	 * @param string[] $headers
	 * @param string|null $payload
	 * @return array [status, body, transport error or null]
	 */
	private function viaStream( string $method, string $url, array $headers, ?string $payload ): array {
		$context = stream_context_create( [ 'http' => [
			'method' => $method,
			'header' => implode( "\r\n", array_merge( $headers, [ 'Connection: close' ] ) ),
			'content' => $payload ?? '',
			'timeout' => $this->timeoutMs / 1000,
			'ignore_errors' => true,
			'follow_location' => 0,
			'protocol_version' => 1.1,
		] ] );
		$error = null;
		set_error_handler( static function ( $no, $message ) use ( &$error ) {
			$error = preg_replace( '/^.*?: /', '', $message );
			return true;
		} );
		$stream = fopen( $url, 'rb', false, $context );
		$text = false;
		if ( $stream !== false ) {
			$text = stream_get_contents( $stream );
			$meta = stream_get_meta_data( $stream );
			fclose( $stream );
			if ( !empty( $meta['timed_out'] ) ) {
				$text = false;
				$error = 'timed out';
			}
		}
		restore_error_handler();
		if ( $text === false ) {
			return [ 0, null, $error ?? 'no answer' ];
		}
		$status = 0;
		foreach ( $meta['wrapper_data'] ?? [] as $line ) {
			if ( preg_match( '#^HTTP/\S+ (\d{3})#', $line, $m ) ) {
				$status = (int)$m[1];
			}
		}
		return [ $status, $text, null ];
	}
}
