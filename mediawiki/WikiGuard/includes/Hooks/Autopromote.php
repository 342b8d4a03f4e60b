<?php

namespace MediaWiki\Extension\WikiGuard\Hooks;

use MediaWiki\Extension\WikiGuard\Consequences;
use MediaWiki\User\Hook\GetAutoPromoteGroupsHook;

/**
 * Holds back automatic promotion of users a filter's blockautopromote consequence hit.
 */
class Autopromote implements GetAutoPromoteGroupsHook {
	/** @var Consequences */
	private $consequences;

	/**
	 * @param Consequences $consequences
	 */
	public function __construct( Consequences $consequences ) {
		$this->consequences = $consequences;
	}

	/**
	 * @inheritDoc
	 */
	public function onGetAutoPromoteGroups( $user, &$promote ) {
		if ( $promote && $this->consequences->autopromoteBlocked( $user->getId() ) ) {
			$promote = [];
		}
	}
}
