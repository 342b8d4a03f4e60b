<?php

namespace MediaWiki\Extension\WikiGuard;

/**
 * What one call to the service gave: the HTTP status (0 when it was not reached), the JSON
 * body, and why it failed.
 */
class Response {
	/** @var int */
	public $status;
	/** @var array|null */
	public $body;
	/** @var string|null */
	public $error;

	/**
	 * @param int $status
	 * @param array|null $body
	 * @param string|null $error
	 */
	public function __construct( int $status, ?array $body, ?string $error ) {
		$this->status = $status;
		$this->body = $body;
		$this->error = $error;
	}

	/**
	 * A 2xx answer with a JSON body.
	 *
	 * @return bool
	 */
	public function ok(): bool {
		return $this->error === null && $this->body !== null;
	}

	/**
	 * The service answered, with a 4xx that is about the request (not an outage).
	 *
	 * @return bool
	 */
	public function refused(): bool {
		return $this->status >= 400 && $this->status < 500 && $this->body !== null;
	}
}
